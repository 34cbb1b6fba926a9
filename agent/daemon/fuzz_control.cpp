// libFuzzer target for control socket requests and HTTP /metrics requests,
// answered by a real Daemon in this process (no sluiced, no broker): its
// ring in a temp dir holds a simulated sensor's readings, its control
// socket and metrics listener are real sockets. Built with -DSLUICE_FUZZ=ON
// and clang (agent/daemon/CMakeLists.txt); the control server, the JSON
// parser and the daemon's status code are compiled with the fuzzer's
// instrumentation.
//
// Input: byte 0 picks the listener (even: control socket, odd: HTTP), the
// rest is what one client sends before closing its side. Checks: the
// server answers and closes within 10 s (no hang, no lost wakeup); on the
// control socket every response line is a JSON object with a boolean "ok",
// and there are no more responses than request lines; on HTTP the response
// is one HTTP/1.0 status line and headers. The daemon keeps serving.
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <chrono>
#include <sanitizer/common_interface_defs.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "agent/config/config.h"
#include "agent/daemon/daemon.h"
#include "common/clock.h"
#include "common/json_parse.h"
#include "common/log.h"

using namespace sluice;

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  // Through the sanitizer's report stream: it stays open under
  // -close_fd_mask=2 (which silences the product's logs).
  __sanitizer_report_error_summary((std::string("fuzz_control: check failed: ") + what).c_str());
  __builtin_trap();
}

// A loopback port free a moment ago (the config wants a fixed one).
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Check(fd >= 0, "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  Check(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0,
        "a free port");
  ::close(fd);
  return ntohs(a.sin_port);
}

struct Served {
  std::string dir;
  std::string socket_path;
  std::unique_ptr<Daemon> daemon;

  Served() {
    SetLogLevel(LogLevel::kError);
    char tmpl[] = "/tmp/sluice-fuzz-control-XXXXXX";
    Check(mkdtemp(tmpl) != nullptr, "mkdtemp");
    dir = tmpl;
    socket_path = dir + "/control.sock";
    const std::string toml = "[agent]\nid = \"fuzz\"\ndata_dir = \"" + dir +
                             "/data\"\ncontrol_socket = \"" + socket_path +
                             "\"\nmetrics_listen = \"127.0.0.1:" + std::to_string(FreePort()) +
                             "\"\n"
                             "[[sensor]]\nname = \"t\"\ndriver = \"simulated\"\n"
                             "interval = \"100ms\"\nunit = \"C\"\n";
    auto config = ParseConfig(toml, "fuzz.toml");
    if (!config.ok()) std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    Check(config.ok(), "config parses");
    auto d = Daemon::Create(std::move(*config), SystemClock::Get());
    if (!d.ok()) std::fprintf(stderr, "%s\n", d.status().ToString().c_str());
    Check(d.ok(), "Daemon::Create");
    daemon = std::move(*d);
    Check(daemon->Start().ok(), "Daemon::Start");
    Check(daemon->metrics_port() > 0, "metrics listener bound");
  }
  ~Served() {
    daemon->Shutdown();
    daemon.reset();
    std::string cmd = "rm -rf '" + dir + "'";
    int rc = std::system(cmd.c_str());
    (void)rc;
  }
};

Served* served = nullptr;

int Connect(bool http) {
  if (http) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    Check(fd >= 0, "socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(served->daemon->metrics_port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    Check(rc == 0 || errno == EINPROGRESS, "connect to /metrics");
    return fd;
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  Check(fd >= 0, "socket");
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, served->socket_path.c_str(), served->socket_path.size() + 1);
  Check(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "connect");
  return fd;
}

// Sends `in`, then closes the sending side, and reads until the server
// closes, at once (the server answers one request at a time: reading and
// writing interleave). Bounded: 10 s is a hang.
std::string Exchange(bool http, std::string_view in) {
  int fd = Connect(http);
  std::string out;
  size_t sent = 0;
  bool shut = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    if (sent == in.size() && !shut) {
      ::shutdown(fd, SHUT_WR);
      shut = true;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    Check(std::chrono::steady_clock::now() < deadline, "the server answers and closes (no hang)");
    if (::poll(&p, 1, 100) <= 0) continue;
    if (p.revents & POLLOUT) {
      ssize_t n = ::send(fd, in.data() + sent, in.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        sent = in.size();  // the server closed (oversized request): stop sending
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[16384];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        break;
      }
    }
  }
  ::close(fd);
  return out;
}

void CheckControl(std::string_view in, const std::string& out) {
  size_t requests = 0;
  for (size_t start = 0; start <= in.size();) {
    size_t nl = in.find('\n', start);
    std::string_view line = in.substr(start, nl == std::string_view::npos ? nl : nl - start);
    // A request line: one trailing '\r' dropped, not only spaces and tabs.
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") != std::string_view::npos) ++requests;
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  size_t responses = 0;
  for (size_t start = 0; start < out.size();) {
    size_t nl = out.find('\n', start);
    Check(nl != std::string::npos, "every response line ends with a newline");
    auto doc = ParseJson(std::string_view(out).substr(start, nl - start));
    Check(doc.ok() && doc->is_object(), "a response is a JSON object");
    const JsonValue* ok = doc->Find("ok");
    Check(ok != nullptr && ok->is_bool(), "a response has a boolean \"ok\"");
    ++responses;
    start = nl + 1;
  }
  // One response per request, or one error line for an oversized request.
  Check(responses <= requests + 1, "no more responses than requests");
}

void CheckHttp(const std::string& out) {
  if (out.empty()) return;  // headers never completed: closed without an answer
  Check(out.rfind("HTTP/1.0 ", 0) == 0, "an HTTP/1.0 status line");
  Check(out.find("\r\n\r\n") != std::string::npos, "the headers end");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (served == nullptr) {
    served = new Served();
    std::atexit([] {
      delete served;
      served = nullptr;
    });
  }
  if (size == 0) return 0;
  const bool http = data[0] % 2 == 1;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string out = Exchange(http, in);
  if (http) {
    CheckHttp(out);
  } else {
    CheckControl(in, out);
  }
  return 0;
}
