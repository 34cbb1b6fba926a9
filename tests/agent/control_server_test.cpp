// ControlServer against real sockets: the line protocol, garbage, oversized
// and never-reading clients, the client cap, socket file mode and stale
// files, the HTTP /metrics listener; PrometheusText escaping.
#include "agent/control/control_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "agent/control/control_client.h"
#include "agent/daemon/status.h"
#include "common/json.h"
#include "tests/support/support.h"

namespace sluice {
namespace {

using testing::TempDir;
using testing::WaitUntil;

int ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int ConnectTcp(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads until `stop` is in the data, EOF, or 5 s pass.
std::string ReadUntil(int fd, const std::string& stop, bool to_eof = false) {
  std::string in;
  int64_t deadline = testing::MonoNowUs() + 5000000;
  char buf[65536];
  while (testing::MonoNowUs() < deadline) {
    if (!to_eof && in.find(stop) != std::string::npos) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  return in;
}

struct Server {
  TempDir dir;
  std::string path = dir.Join("control.sock");
  std::string big = std::string(4 << 20, 'x');  // the "big" command's payload
  std::unique_ptr<ControlServer> server;

  Status Start(ControlServerOptions o = {}) {
    o.socket_path = path;
    auto s = ControlServer::Start(
        o,
        [this](const std::string& cmd, const JsonValue& req) -> StatusOr<std::string> {
          if (cmd == "ping") return std::string("{\"ok\":true,\"pong\":1}");
          if (cmd == "echo") {
            const JsonValue* v = req.Find("v");
            return "{\"ok\":true,\"v\":" + JsonString(v ? v->AsString() : "") + "}";
          }
          if (cmd == "big") return "{\"ok\":true,\"big\":\"" + big + "\"}";
          return InvalidArgument("unknown command \"" + cmd + "\"");
        },
        [] { return std::string("# TYPE x gauge\nx 1\n"); });
    if (!s.ok()) return s.status();
    server = std::move(*s);
    return Status::Ok();
  }
};

TEST_CASE("control socket: requests, garbage, several per connection, half-close", "[control]") {
  Server s;
  REQUIRE(s.Start().ok());
  int fd = ConnectUnix(s.path);
  REQUIRE(fd >= 0);
  REQUIRE(SendAll(fd, "{\"cmd\":\"ping\"}\n{\"cmd\":\"echo\",\"v\":\"a\\nb\"}\n"));
  std::string r = ReadUntil(fd, "a\\nb\"}\n");
  CHECK(r == "{\"ok\":true,\"pong\":1}\n{\"ok\":true,\"v\":\"a\\nb\"}\n");
  // Garbage gets an error and the connection stays usable.
  REQUIRE(SendAll(fd, "this is not json\n[1,2]\n{\"cmd\":\"nope\"}\n{\"cmd\":\"ping\"}\n"));
  r = ReadUntil(fd, "pong");
  CHECK(r.find("{\"ok\":false,\"error\":\"bad request: line 1 col 1") == 0);
  CHECK(r.find("expected an object with a string \\\"cmd\\\"") != std::string::npos);
  CHECK(r.find("unknown command \\\"nope\\\"") != std::string::npos);
  CHECK(r.find("{\"ok\":true,\"pong\":1}\n") != std::string::npos);
  // A last request without a newline, then a half-close: still answered.
  REQUIRE(SendAll(fd, "{\"cmd\":\"ping\"}"));
  ::shutdown(fd, SHUT_WR);
  CHECK(ReadUntil(fd, "", true) == "{\"ok\":true,\"pong\":1}\n");
  ::close(fd);
  ControlServerStats st = s.server->stats();
  CHECK(st.bad_requests == 3);
  CHECK(st.requests == 4);
}

TEST_CASE("control socket: an oversized line is refused and the connection closed", "[control]") {
  Server s;
  ControlServerOptions o;
  o.max_request_bytes = 64 << 10;
  REQUIRE(s.Start(o).ok());
  int fd = ConnectUnix(s.path);
  REQUIRE(fd >= 0);
  // 8 MiB without a newline: the server stops reading after 64 KiB, answers
  // and closes; our send fails or stalls once it is gone.
  std::string chunk(1 << 20, 'a');
  for (int i = 0; i < 8; ++i) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    if (::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN)
      break;
  }
  std::string r = ReadUntil(fd, "", true);
  CHECK(r == "{\"ok\":false,\"error\":\"request longer than 65536 bytes\"}\n");
  ::close(fd);
  CHECK(s.server->stats().oversized == 1);
  // The server still answers others.
  int fd2 = ConnectUnix(s.path);
  REQUIRE(SendAll(fd2, "{\"cmd\":\"ping\"}\n"));
  CHECK(ReadUntil(fd2, "\n") == "{\"ok\":true,\"pong\":1}\n");
  ::close(fd2);
}

TEST_CASE("control socket: a client that never reads blocks nobody and is dropped", "[control]") {
  Server s;
  ControlServerOptions o;
  o.idle_timeout_us = 500000;
  REQUIRE(s.Start(o).ok());
  int stuck = ConnectUnix(s.path);
  REQUIRE(stuck >= 0);
  // 4 MiB responses that it never reads (more than any socket buffer), and
  // more requests behind them.
  REQUIRE(SendAll(stuck, "{\"cmd\":\"big\"}\n{\"cmd\":\"big\"}\n{\"cmd\":\"big\"}\n"));
  for (int i = 0; i < 20; ++i) {
    int fd = ConnectUnix(s.path);
    REQUIRE(fd >= 0);
    REQUIRE(SendAll(fd, "{\"cmd\":\"ping\"}\n"));
    CHECK(ReadUntil(fd, "\n") == "{\"ok\":true,\"pong\":1}\n");
    ::close(fd);
  }
  // No progress for idle_timeout: closed (we then read at most what was
  // queued before, and EOF).
  CHECK(WaitUntil([&] { return s.server->stats().timeouts == 1; }, 5000000));
  std::string got = ReadUntil(stuck, "", true);
  CHECK(got.size() < 2 * s.big.size());
  ::close(stuck);
}

TEST_CASE("control socket: a request trickled in byte by byte is cut at idle_timeout",
          "[control]") {
  Server s;
  ControlServerOptions o;
  o.idle_timeout_us = 400000;
  REQUIRE(s.Start(o).ok());
  int slow = ConnectUnix(s.path);
  REQUIRE(slow >= 0);
  // One byte every 100 ms: progress each time, but the request never ends.
  // It must be complete within idle_timeout of its first byte.
  bool closed = false;
  for (int i = 0; i < 40 && !closed; ++i) {
    closed = ::send(slow, "x", 1, MSG_NOSIGNAL) != 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (s.server->stats().timeouts >= 1) closed = true;
  }
  CHECK(closed);
  CHECK(s.server->stats().timeouts == 1);
  ::close(slow);
  // A connection idle between requests is not cut by a past request's clock.
  int fd = ConnectUnix(s.path);
  REQUIRE(fd >= 0);
  REQUIRE(SendAll(fd, "{\"cmd\":\"ping\"}\n"));
  CHECK(ReadUntil(fd, "\n") == "{\"ok\":true,\"pong\":1}\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  REQUIRE(SendAll(fd, "{\"cmd\":\"ping\"}\n"));
  CHECK(ReadUntil(fd, "\n") == "{\"ok\":true,\"pong\":1}\n");
  ::close(fd);
}

TEST_CASE("control socket: at most max_clients connections", "[control]") {
  Server s;
  ControlServerOptions o;
  o.max_clients = 4;
  REQUIRE(s.Start(o).ok());
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) {
    fds.push_back(ConnectUnix(s.path));
    REQUIRE(SendAll(fds.back(), "{\"cmd\":\"ping\"}\n"));
    CHECK(ReadUntil(fds.back(), "\n") == "{\"ok\":true,\"pong\":1}\n");
    // A request begun: busy, not idle, so nobody is evicted for the extra.
    REQUIRE(SendAll(fds.back(), "{\"cmd\":"));
  }
  int extra = ConnectUnix(s.path);
  REQUIRE(extra >= 0);
  CHECK(ReadUntil(extra, "", true) == "{\"ok\":false,\"error\":\"too many clients\"}\n");
  ::close(extra);
  CHECK(s.server->stats().rejected == 1);
  ::close(fds[0]);
  int again = -1;
  CHECK(WaitUntil(
      [&] {
        if (again >= 0) ::close(again);
        again = ConnectUnix(s.path);
        return SendAll(again, "{\"cmd\":\"ping\"}\n") &&
               ReadUntil(again, "\n").find("pong") != std::string::npos;
      },
      5000000, 50000));
  ::close(again);
  for (size_t i = 1; i < fds.size(); ++i) ::close(fds[i]);
}

TEST_CASE("control socket: idle clients cannot lock an operator out", "[control]") {
  Server s;
  ControlServerOptions o;
  o.max_clients = 16;
  o.idle_timeout_us = 30000000;  // far longer than this test
  REQUIRE(s.Start(o).ok());
  // 100 idle clients that reconnect at once whenever they are closed.
  std::vector<int> idle;
  for (int i = 0; i < 100; ++i) idle.push_back(ConnectUnix(s.path));
  std::atomic<bool> stop{false};
  std::atomic<int> reconnects{0};
  std::thread hostile([&] {
    while (!stop) {
      for (int& fd : idle) {
        pollfd p{fd, POLLIN, 0};
        if (fd >= 0 && ::poll(&p, 1, 0) <= 0) continue;  // still held open
        if (fd >= 0) ::close(fd);
        fd = ConnectUnix(s.path);
        ++reconnects;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // now they are idle
  // Every call is answered at once, not after the idle timeout.
  for (int i = 0; i < 10; ++i) {
    auto r = ControlCall(s.path, "{\"cmd\":\"ping\"}", 3000000);
    INFO("call " << i << ": " << (r.ok() ? std::string("ok") : r.status().message()));
    CHECK(r.ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  stop = true;
  hostile.join();
  for (int fd : idle) {
    if (fd >= 0) ::close(fd);
  }
  CHECK(s.server->stats().evicted >= 10);
  CHECK(reconnects > 0);
}

TEST_CASE("control client: a daemon that closed before taking the request is heard out",
          "[control]") {
  // The daemon wrote its reason and closed before the client sent anything:
  // the send fails with EPIPE, and the reason is still what the client says.
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  REQUIRE(SendAll(sv[1], "{\"ok\":false,\"error\":\"too many clients\"}\n"));
  ::close(sv[1]);
  auto r = ControlExchange(sv[0], "/run/sluice/control.sock", "{\"cmd\":\"status\"}", 1000000);
  ::close(sv[0]);
  REQUIRE(!r.ok());
  CHECK(r.status().message() == "sluiced: too many clients");

  // Closed without a word: say what happened, not "Broken pipe".
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  ::close(sv[1]);
  r = ControlExchange(sv[0], "/run/sluice/control.sock", "{\"cmd\":\"status\"}", 1000000);
  ::close(sv[0]);
  REQUIRE(!r.ok());
  CHECK(r.status().message().find("closed the connection before taking the request") !=
        std::string::npos);
  CHECK(r.status().message().find("Broken pipe") == std::string::npos);
}

TEST_CASE("control socket file: 0660 under any umask, stale replaced, live kept, removed",
          "[control]") {
  Server s;
  mode_t old = ::umask(0);
  Status st = s.Start();
  ::umask(old);
  REQUIRE(st.ok());
  struct stat sb;
  REQUIRE(::lstat(s.path.c_str(), &sb) == 0);
  CHECK(S_ISSOCK(sb.st_mode));
  CHECK((sb.st_mode & 07777) == 0660);
  CHECK(sb.st_uid == ::geteuid());
  CHECK(sb.st_gid == ::getegid());
  CHECK(UnixSocketAnswers(s.path));

  // A second server on the same path refuses to start and leaves it alone.
  Server second;
  second.path = s.path;
  Status busy = second.Start();
  CHECK(!busy.ok());
  CHECK(busy.message().find("another sluiced is already serving") != std::string::npos);
  int fd = ConnectUnix(s.path);
  CHECK(fd >= 0);
  ::close(fd);

  s.server->Stop();
  CHECK(::lstat(s.path.c_str(), &sb) != 0);  // removed

  // A stale socket file (bound, never accepted on, closed: what a crash
  // leaves) is replaced.
  int stale = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", s.path.c_str());
  REQUIRE(::bind(stale, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  ::close(stale);
  REQUIRE(::lstat(s.path.c_str(), &sb) == 0);
  CHECK(!UnixSocketAnswers(s.path));
  Server third;
  third.path = s.path;
  REQUIRE(third.Start().ok());
  CHECK(UnixSocketAnswers(s.path));

  // A regular file in the way is not removed.
  Server fourth;
  REQUIRE(testing::WriteFile(fourth.path, "data"));
  Status notsock = fourth.Start();
  CHECK(!notsock.ok());
  CHECK(notsock.message().find("is not a socket") != std::string::npos);
  CHECK(testing::ReadFile(fourth.path) == "data");
}

std::string Http(int port, const std::string& request) {
  int fd = ConnectTcp(port);
  if (fd < 0) return "";
  SendAll(fd, request);
  std::string r = ReadUntil(fd, "", true);
  ::close(fd);
  return r;
}

TEST_CASE("metrics over HTTP: GET /metrics, 404, 405, 400, oversized headers", "[control]") {
  Server s;
  ControlServerOptions o;
  o.metrics_host = "127.0.0.1";
  o.metrics_port = 0;
  REQUIRE(s.Start(o).ok());
  int port = s.server->metrics_port();
  REQUIRE(port > 0);
  std::string r = Http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(r.find("HTTP/1.0 200 OK\r\n") == 0);
  CHECK(r.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
  CHECK(r.find("Content-Length: 19\r\n") != std::string::npos);
  CHECK(r.substr(r.size() - 19) == "# TYPE x gauge\nx 1\n");
  r = Http(port, "HEAD /metrics HTTP/1.0\r\n\r\n");
  CHECK(r.find("HTTP/1.0 200 OK\r\n") == 0);
  CHECK(r.find("x 1") == std::string::npos);
  CHECK(Http(port, "GET / HTTP/1.0\r\n\r\n").find("HTTP/1.0 404 ") == 0);
  CHECK(Http(port, "POST /metrics HTTP/1.0\r\n\r\n").find("HTTP/1.0 405 ") == 0);
  CHECK(Http(port, "garbage\r\n\r\n").find("HTTP/1.0 400 ") == 0);
  CHECK(Http(port, "GET /metrics HTTP/1.0\r\nX: " + std::string(20000, 'a') + "\r\n\r\n")
            .find("HTTP/1.0 431 ") == 0);
  ControlServerStats st = s.server->stats();
  CHECK(st.http_requests == 5);
  CHECK(st.oversized == 1);
}

TEST_CASE("Prometheus text: label values escaped, HELP/TYPE per family", "[control]") {
  CHECK(PromLabelEscape("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  DaemonSnapshot snap;
  snap.agent_id = "gw\"1";
  snap.version = "0.1";
  SensorStatus st;
  st.name = "t";
  st.has_value = true;
  st.last_value = 1.5;
  snap.sensors.push_back(st);
  std::string text = PrometheusText(snap);
  CHECK(text.find("sluice_info{agent=\"gw\\\"1\",version=\"0.1\"} 1\n") != std::string::npos);
  CHECK(text.find("sluice_sensor_value{sensor=\"t\"} 1.5\n") != std::string::npos);
  CHECK(text.find("# TYPE sluice_buffer_evictions_total counter\n"
                  "sluice_buffer_evictions_total{reason=\"limit\"} 0\n"
                  "sluice_buffer_evictions_total{reason=\"full_disk\"} 0\n") != std::string::npos);
}

TEST_CASE("status and metrics show readings held ahead of the wall clock", "[control]") {
  DaemonSnapshot snap;
  snap.rules_enabled = true;
  snap.rules.engine.late = 4;
  snap.rules.engine.ahead = 3;
  snap.rules.engine.ahead_dropped = 1;
  snap.rules.engine.held = 2;
  std::string json = StatusJson(snap);
  CHECK(json.find("\"late\":4,\"future\":0,\"ahead\":3,\"ahead_dropped\":1,\"held\":2") !=
        std::string::npos);
  std::string text = PrometheusText(snap);
  CHECK(text.find("sluice_rules_ahead_readings_total 3\n") != std::string::npos);
  CHECK(text.find("sluice_rules_ahead_dropped_total 1\n") != std::string::npos);
  CHECK(text.find("# TYPE sluice_rules_held_readings gauge\nsluice_rules_held_readings 2\n") !=
        std::string::npos);
}

}  // namespace
}  // namespace sluice
