#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <toml++/toml.h>

#include "common/clock.h"
#include "drivers/line_protocol.h"
#include "drivers/push.h"
#include "test_sink.h"

using namespace sluice;

namespace {

// A temp dir removed (with its files) at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/sluice-push-XXXXXX";
    char* p = mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path + "'";
    int rc = std::system(cmd.c_str());
    (void)rc;
  }
};

std::unique_ptr<PushDriver> MakePush(const std::string& listen, Clock& clock) {
  StatusOr<ListenAddress> a = ParseListenAddress(listen);
  REQUIRE(a.ok());
  return std::make_unique<PushDriver>("ingest", *a, clock);
}

// Connects a client socket to the driver's address; -1 on failure.
int Connect(const PushDriver& d) {
  const ListenAddress& a = d.address();
  int type = a.stream() ? SOCK_STREAM : SOCK_DGRAM;
  if (a.unix_socket()) {
    int fd = socket(AF_UNIX, type, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, a.path.c_str(), sizeof sa.sun_path - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }
  int fd = socket(AF_INET, type, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(d.port()));
  inet_pton(AF_INET, a.host.c_str(), &sa.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{10, 0};  // a bug must not hang the test forever
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Waits (bounded) for `pred`.
template <typename Pred>
bool WaitUntil(Pred pred, int timeout_ms = 10000) {
  for (int i = 0; i < timeout_ms / 5; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

}  // namespace

TEST_CASE("listen addresses: the four transports, loopback only") {
  auto u = ParseListenAddress("unix:///run/sluice/push.sock");
  REQUIRE(u.ok());
  CHECK(u->kind == ListenAddress::Kind::kUnix);
  CHECK(u->path == "/run/sluice/push.sock");
  auto g = ParseListenAddress("unixgram:///tmp/x");
  REQUIRE(g.ok());
  CHECK(g->kind == ListenAddress::Kind::kUnixgram);
  auto t = ParseListenAddress("tcp://127.0.0.1:8094");
  REQUIRE(t.ok());
  CHECK(t->port == 8094);
  CHECK(t->ToString() == "tcp://127.0.0.1:8094");
  auto u6 = ParseListenAddress("udp://[::1]:0");
  REQUIRE(u6.ok());
  CHECK(u6->ipv6);
  CHECK(ParseListenAddress("tcp://127.3.4.5:1").ok());

  for (const char* bad :
       {"tcp://0.0.0.0:1", "tcp://10.0.0.1:1", "udp://[::]:1", "tcp://localhost:1",
        "tcp://127.0.0.1", "tcp://127.0.0.1:70000", "tcp://127.0.0.1:x", "http://127.0.0.1:1",
        "unix://relative", "unix://", "/tmp/sock", "udp://[::2]:5"}) {
    INFO(bad);
    CHECK_FALSE(ParseListenAddress(bad).ok());
  }
  CHECK_THAT(ParseListenAddress("tcp://192.168.1.2:80").status().message(),
             Catch::Contains("not loopback"));
}

TEST_CASE("push factory locates a bad listen param") {
  FakeClock clock;
  SharedDevices devices;
  DriverContext ctx{clock, devices};
  toml::table root = toml::parse(
      std::string_view("[sensor]\nparams = { listen = \"tcp://0.0.0.0:9\" }\n"),
      std::string_view("p.toml"));
  Params p("p.toml", "ingest", root["sensor"]["params"].as_table(), 1, 1);
  SensorSpec spec;
  spec.name = "ingest";
  spec.driver = "push";
  auto d = DriverRegistry::Builtin().Create(spec, p, ctx);
  REQUIRE_FALSE(d.ok());
  CHECK_THAT(d.status().message(),
             Catch::StartsWith("p.toml:2:21: sensor \"ingest\": param \"listen\" address"));
}

TEST_CASE("push end to end over each transport") {
  TempDir dir;
  SystemClock& clock = SystemClock::Get();
  std::vector<std::string> listens = {
      "unix://" + dir.path + "/sub/stream.sock",  // parent created
      "unixgram://" + dir.path + "/dgram.sock",
      "tcp://127.0.0.1:0",
      "udp://127.0.0.1:0",
  };
  for (const std::string& listen : listens) {
    INFO(listen);
    TestSink sink;
    auto d = MakePush(listen, clock);
    Status st = d->Start(sink);
    REQUIRE(st.ok());
    CHECK_FALSE(d->polled());
    if (!d->address().unix_socket()) CHECK(d->port() > 0);
    if (d->address().unix_socket()) {
      struct stat sb;
      REQUIRE(stat(d->address().path.c_str(), &sb) == 0);
      CHECK(S_ISSOCK(sb.st_mode));
      CHECK((sb.st_mode & 0777) == 0660);
    }
    int fd = Connect(*d);
    REQUIRE(fd >= 0);
    if (d->address().stream()) {
      // Partial lines across writes are reassembled.
      REQUIRE(SendAll(fd, "boiler.temp 21.5 1764075600123456\npump"));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      REQUIRE(SendAll(fd, ".rpm 1200\n"));
    } else {
      REQUIRE(SendAll(fd, "boiler.temp 21.5 1764075600123456\npump.rpm 1200"));
    }
    REQUIRE(sink.WaitFor(2) == 2);
    auto r = sink.readings();
    CHECK(r[0].sensor == "boiler.temp");
    CHECK(r[0].value == 21.5);
    CHECK(r[0].ts_us == 1764075600123456);
    CHECK(r[0].unit.empty());
    CHECK(r[0].quality == Quality::kGood);
    CHECK(r[1].sensor == "pump.rpm");
    CHECK(r[1].value == 1200);
    CHECK(r[1].ts_us > 1700000000000000);  // stamped with the wall clock
    PushStats s = d->stats();
    CHECK(s.lines_ok == 2);
    CHECK(s.lines_bad == 0);
    if (d->address().stream()) CHECK(s.clients == 1);
    close(fd);
    if (d->address().stream()) CHECK(WaitUntil([&] { return d->stats().clients == 0; }));
    d->Stop();
    d->Stop();
    if (d->address().unix_socket()) {
      CHECK(access(d->address().path.c_str(), F_OK) != 0);  // removed on Stop
    }
  }
}

TEST_CASE("bad lines are counted and the listener keeps working") {
  TempDir dir;
  for (const std::string& listen : {"unix://" + dir.path + "/s.sock", std::string("udp://127.0.0.1:0")}) {
    INFO(listen);
    TestSink sink;
    auto d = MakePush(listen, SystemClock::Get());
    REQUIRE(d->Start(sink).ok());
    int fd = Connect(*d);
    REQUIRE(fd >= 0);
    std::string overlong = "x " + std::string(kMaxLineBytes + 100, '1');
    if (d->address().stream()) {
      REQUIRE(SendAll(fd, "no_value\nbad/name 1\nt nan\nt 1 2 3\n\n" + overlong +
                              "\nok.1 5\n" + overlong.substr(0, 3000)));
      REQUIRE(SendAll(fd, overlong.substr(3000) + "\nok.2 6\n"));
    } else {
      REQUIRE(SendAll(fd, "no_value\nbad/name 1\nt nan\nt 1 2 3\n\n" + overlong + "\nok.1 5\n"));
      REQUIRE(SendAll(fd, overlong));
      REQUIRE(SendAll(fd, "ok.2 6\n"));
    }
    REQUIRE(sink.WaitFor(2) == 2);
    CHECK(WaitUntil([&] { return d->stats().lines_bad == 6; }));
    PushStats s = d->stats();
    CHECK(s.lines_ok == 2);
    CHECK(s.lines_bad == 6);
    auto r = sink.readings();
    CHECK(r[0].sensor == "ok.1");
    CHECK(r[1].sensor == "ok.2");
    close(fd);
    d->Stop();
  }
}

TEST_CASE("stream backpressure: nothing is dropped while the sink is full") {
  TempDir dir;
  for (const std::string& listen : {std::string("tcp://127.0.0.1:0"), "unix://" + dir.path + "/bp.sock"}) {
    INFO(listen);
    TestSink sink;
    sink.SetBlocked(true);
    auto d = MakePush(listen, SystemClock::Get());
    REQUIRE(d->Start(sink).ok());
    int fd = Connect(*d);
    REQUIRE(fd >= 0);
    const int kLines = 50000;  // ~1 MB: more than the socket buffers hold
    bool sent = false;
    std::thread sender([&] {
      std::string batch;
      for (int i = 0; i < kLines; ++i) batch += "s" + std::to_string(i % 10) + " " + std::to_string(i) + "\n";
      sent = SendAll(fd, batch);
    });
    // The listener is stuck on the full sink; the sender is held back by the kernel.
    CHECK(sink.WaitForRefused(3) >= 3);
    CHECK(sink.size() == 0);
    sink.SetBlocked(false);
    sender.join();
    CHECK(sent);
    CHECK(sink.WaitFor(kLines, 30000) == static_cast<size_t>(kLines));
    auto r = sink.readings();
    bool in_order = true;
    for (int i = 0; i < kLines && i < static_cast<int>(r.size()); ++i) {
      if (r[i].value != i) in_order = false;
    }
    CHECK(in_order);
    PushStats s = d->stats();
    CHECK(s.lines_ok == static_cast<uint64_t>(kLines));
    CHECK(s.dropped == 0);
    CHECK(s.backpressure_waits >= 1);
    close(fd);
    d->Stop();
  }
}

TEST_CASE("datagram listeners count drops when the sink refuses") {
  TestSink sink;
  sink.SetRefuse(true);
  auto d = MakePush("udp://127.0.0.1:0", SystemClock::Get());
  REQUIRE(d->Start(sink).ok());
  int fd = Connect(*d);
  REQUIRE(fd >= 0);
  REQUIRE(SendAll(fd, "a 1\nb 2\n"));
  CHECK(WaitUntil([&] { return d->stats().dropped == 2; }));
  CHECK(d->stats().lines_ok == 2);
  close(fd);
  d->Stop();
}

TEST_CASE("unix sockets: stale files replaced, live ones and non-sockets refused") {
  TempDir dir;
  const std::string path = dir.path + "/push.sock";
  // A stale socket file: bound, then its owner went away without unlinking.
  {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    close(fd);
  }
  TestSink sink;
  auto d = MakePush("unix://" + path, SystemClock::Get());
  REQUIRE(d->Start(sink).ok());
  int fd = Connect(*d);
  REQUIRE(fd >= 0);
  REQUIRE(SendAll(fd, "a 1\n"));
  CHECK(sink.WaitFor(1) == 1);

  // A second listener on the same live path fails clearly.
  auto second = MakePush("unix://" + path, SystemClock::Get());
  Status st = second->Start(sink);
  CHECK_FALSE(st.ok());
  CHECK_THAT(st.message(), Catch::Contains("in use"));
  close(fd);
  d->Stop();

  // A regular file is never removed.
  const std::string file = dir.path + "/regular";
  FILE* f = fopen(file.c_str(), "w");
  REQUIRE(f != nullptr);
  fclose(f);
  auto third = MakePush("unix://" + file, SystemClock::Get());
  st = third->Start(sink);
  CHECK_FALSE(st.ok());
  CHECK_THAT(st.message(), Catch::Contains("not a socket"));
  CHECK(access(file.c_str(), F_OK) == 0);
}

TEST_CASE("tcp bind failure is a clear error") {
  TestSink sink;
  auto a = MakePush("tcp://127.0.0.1:0", SystemClock::Get());
  REQUIRE(a->Start(sink).ok());
  auto b = MakePush("tcp://127.0.0.1:" + std::to_string(a->port()), SystemClock::Get());
  Status st = b->Start(sink);
  CHECK_FALSE(st.ok());
  CHECK_THAT(st.message(), Catch::Contains("Address already in use"));
  a->Stop();
}

TEST_CASE("many stream clients are served by one listener") {
  TestSink sink;
  auto d = MakePush("tcp://127.0.0.1:0", SystemClock::Get());
  REQUIRE(d->Start(sink).ok());
  std::vector<int> fds;
  for (int i = 0; i < 50; ++i) {
    int fd = Connect(*d);
    REQUIRE(fd >= 0);
    fds.push_back(fd);
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    REQUIRE(SendAll(fds[i], "c" + std::to_string(i) + " 1\n"));
  }
  CHECK(sink.WaitFor(50) == 50);
  CHECK(d->stats().clients_total == 50);
  for (int fd : fds) close(fd);
  d->Stop();  // closes nothing twice, joins promptly
  CHECK(d->stats().clients == 0);
}
