// sluiced's operational side, against real processes: NOTIFY_SOCKET
// (READY, WATCHDOG, STOPPING on a datagram socket the test listens on), the
// control socket left by kill -9 replaced on restart, a second sluiced on
// the same socket refused, the password-file warning, metrics_listen
// validation, and `sluice status --watch` under a real pseudo-terminal
// (progress bar and ETA while a backlog drains) and in a pipe.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "tests/integration/cli_live_util.h"
#include "tests/support/mosquitto_broker.h"

namespace sluice {
namespace testing {
namespace {

// A datagram socket bound at `path`, like systemd's notify socket.
struct NotifyListener {
  int fd = -1;
  explicit NotifyListener(const std::string& path) {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~NotifyListener() { ::close(fd); }
  // The next datagram within timeout_us, or "".
  std::string Next(int64_t timeout_us) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout_us / 1000)) <= 0) return "";
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
};

TEST_CASE("NOTIFY_SOCKET: READY, WATCHDOG at half of WATCHDOG_USEC, STOPPING", "[integration]") {
  LiveSetup s("mqtt://127.0.0.1:" + std::to_string(FreeLoopbackPort()));
  NotifyListener notify(s.dir.Join("notify.sock"));
  Process p;
  Process::Options o;
  o.argv = {SluicedPath(), "--config", s.config};
  o.extra_env = {"NOTIFY_SOCKET=" + s.dir.Join("notify.sock"), "WATCHDOG_USEC=200000"};
  o.stderr_path = s.dir.Join("notify-run.log");
  REQUIRE(p.Start(o));
  CHECK(notify.Next(20000000) == "READY=1\nSTATUS=serving");
  // The control socket serves once READY was sent.
  CHECK(ExitStatus(RunCli({"--socket", s.sock, "status"}, s.dir.path()).status) == 0);
  // Pings at about 100 ms: at least 10 in 3 s (bounded count, no timing
  // assertion beyond "it keeps coming").
  int pings = 0;
  int64_t until = MonoNowUs() + 3000000;
  while (MonoNowUs() < until && pings < 10) {
    std::string m = notify.Next(1000000);
    if (m == "WATCHDOG=1") ++pings;
  }
  CHECK(pings == 10);
  p.Kill(SIGTERM);
  std::string last;
  for (int i = 0; i < 100; ++i) {
    std::string m = notify.Next(5000000);
    if (m.empty() || m == "STOPPING=1") {
      last = m;
      break;
    }
  }
  CHECK(last == "STOPPING=1");
  auto st = p.Wait(15000000);
  REQUIRE(st);
  CHECK(ExitStatus(*st) == 0);
}

TEST_CASE("control socket: a crash's socket is replaced, a live one is not stolen",
          "[integration]") {
  LiveSetup s("mqtt://127.0.0.1:" + std::to_string(FreeLoopbackPort()),
              {"", "0644", 64, 100000, ""});
  std::string err;
  REQUIRE(s.d.Start(&err));
  // World-readable password file: warned about, never printed.
  CHECK(s.d.Log().find("WARN agent: upstream \"cloud\": password_file " + s.password_file +
                       " is readable by others (mode 0644)") != std::string::npos);

  // A second sluiced on the same config refuses before touching the buffer.
  RunResult second = RunSluiced({"--config", s.config}, s.dir.path());
  CHECK(ExitStatus(second.status) == 1);
  CHECK(second.err.find("another sluiced is already serving the control socket " + s.sock) !=
        std::string::npos);
  CHECK(second.err.find("opened") == std::string::npos);
  CHECK(ExitStatus(RunCli({"--socket", s.sock, "status"}, s.dir.path()).status) == 0);

  // kill -9 leaves the socket file; nobody answers on it.
  s.d.Kill();
  struct stat sb;
  REQUIRE(::lstat(s.sock.c_str(), &sb) == 0);
  RunResult down = RunCli({"--socket", s.sock, "status"}, s.dir.path());
  CHECK(ExitStatus(down.status) == 1);
  CHECK(down.err.find("sluiced is not running (nothing listens on " + s.sock) != std::string::npos);
  // The restart replaces it.
  REQUIRE(s.d.Start(&err));
  CHECK(s.d.Log().find("INFO control: replaced a stale control socket " + s.sock) !=
        std::string::npos);
  JsonValue st;
  CHECK(s.Status(&st));
  REQUIRE(::lstat(s.sock.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 07777) == 0660);
  CHECK(secrets_absent(s.d.Log()));
  CHECK(ExitStatus(s.d.Terminate()) == 0);
}

TEST_CASE("SIGHUP: the reload names new and removed rules; status follows", "[integration]") {
  LiveSetup s("mqtt://127.0.0.1:" + std::to_string(FreeLoopbackPort()));
  std::string err;
  REQUIRE(s.d.Start(&err));
  REQUIRE(WriteFile(s.rules_file,
                    "[[rule]]\nname = \"always\"\nwhen = \"avg(boiler.temp, 1s) > -1000\"\n"
                    "severity = \"critical\"\nmessage = \"at {value}\"\n\n"
                    "[[rule]]\nname = \"third\"\nwhen = \"max(boiler.temp, 2s) > 1000\"\n"));
  ::kill(s.d.pid(), SIGHUP);
  REQUIRE(WaitUntil(
      [&] { return s.d.Log().find("INFO rules: removed rules: never") != std::string::npos; },
      10000000));
  CHECK(s.d.Log().find("INFO rules: new rules: third\n") != std::string::npos);
  JsonValue st;
  REQUIRE(s.Status(&st));
  REQUIRE(st.AtPath("$.rules.list[1].name") != nullptr);
  CHECK(st.AtPath("$.rules.list[1].name")->AsString() == "third");
  CHECK(st.AtPath("$.rules.loaded")->AsNumber() == 2);
  CHECK(ExitStatus(s.d.Terminate()) == 0);
}

TEST_CASE("metrics_listen is validated with FILE:LINE:COL", "[integration]") {
  TempDir dir;
  std::string config = dir.Join("bad.toml");
  REQUIRE(WriteFile(config, "[agent]\nid = \"x\"\ndata_dir = \"" + dir.Join("d") +
                                "\"\nmetrics_listen = \"localhost:99999\"\n"));
  RunResult r = RunSluiced({"--config", config, "--check"}, dir.path());
  CHECK(ExitStatus(r.status) == 2);
  CHECK(r.err.find(config +
                   ":4:18: [agent]: \"metrics_listen\" the port must be a number in 1..65535") ==
        0);
}

// Runs `argv` on a new pseudo-terminal (80x24), collecting its output until
// `done(output)` or timeout_us; then SIGINT and reap (SIGKILL if needed).
struct PtyRun {
  std::string output;
  int status = -1;
};
PtyRun RunOnPty(const std::vector<std::string>& argv, int64_t timeout_us,
                const std::function<bool(const std::string&)>& done) {
  PtyRun r;
  int master = -1, slave = -1;
  winsize ws{24, 80, 0, 0};
  REQUIRE(::openpty(&master, &slave, nullptr, nullptr, &ws) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::setsid();
    ::ioctl(slave, TIOCSCTTY, 0);
    ::dup2(slave, 0);
    ::dup2(slave, 1);
    ::dup2(slave, 2);
    ::close(master);
    ::close(slave);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(slave);
  int64_t deadline = MonoNowUs() + timeout_us;
  char buf[8192];
  while (MonoNowUs() < deadline && !done(r.output)) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;
    r.output.append(buf, static_cast<size_t>(n));
  }
  ::kill(pid, SIGINT);
  for (int i = 0; i < 100; ++i) {
    // Keep draining so the child never blocks on a full terminal.
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n > 0) r.output.append(buf, static_cast<size_t>(n));
    }
    if (::waitpid(pid, &r.status, WNOHANG) == pid) break;
  }
  if (::waitpid(pid, &r.status, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &r.status, 0);
  }
  ::close(master);
  return r;
}

TEST_CASE("status --watch: redraws on a terminal with a progress bar while a backlog drains",
          "[integration]") {
  MosquittoBroker::Options bo;
  bo.port = FreeLoopbackPort();
  MosquittoBroker broker(bo);
  LiveOptions lo;
  lo.sensor_interval = "";
  lo.max_events = 1000000;
  lo.max_inflight = 16;
  LiveSetup s("mqtt://127.0.0.1:" + std::to_string(bo.port), lo);
  std::string err;
  REQUIRE(s.d.Start(&err));

  // A backlog of 200,000 readings while the broker is down.
  const int kEvents = 200000;
  int fd = ConnectUnix(s.push_sock);
  REQUIRE(fd >= 0);
  std::string lines;
  for (int i = 0; i < kEvents; ++i) lines += "load.x " + std::to_string(i) + "\n";
  REQUIRE(SendAll(fd, lines));
  ::close(fd);
  JsonValue st;
  REQUIRE(WaitUntil(
      [&] { return s.Status(&st) && st.AtPath("$.buffer.last_seq")->AsNumber() >= kEvents; },
      60000000, 100000));
  CHECK(st.AtPath("$.upstreams[0].connected")->AsBool() == false);
  CHECK(st.AtPath("$.upstreams[0].backlog")->AsNumber() >= kEvents);
  CHECK(st.AtPath("$.upstreams[0].backlog_age_s")->AsNumber() >= 0);
  CHECK(st.AtPath("$.upstreams[0].drain_eta_s")->is_null());

  // Not a terminal: plain text, no escape codes, a snapshot a second.
  RunResult pipe_watch;
  {
    Process p;
    Process::Options o;
    o.argv = {SluicePath(), "--socket", s.sock, "status", "--watch"};
    o.stdout_path = s.dir.Join("watch-pipe.out");
    REQUIRE(p.Start(o));
    REQUIRE(WaitUntil([&] { return CountOf(ReadFile(o.stdout_path), "\nBUFFER ") >= 2; }, 10000000,
                      50000));
    p.Kill(SIGINT);
    auto ws = p.Wait(5000000);
    REQUIRE(ws);
    CHECK(ExitStatus(*ws) == 0);
    std::string out = ReadFile(o.stdout_path);
    CHECK(out.find('\x1b') == std::string::npos);
    CHECK(out.find("drain waiting for the link") != std::string::npos);
  }

  // The broker comes up: on a terminal, the screen is redrawn with a bar.
  REQUIRE(broker.Start(&err));
  PtyRun r = RunOnPty({SluicePath(), "--socket", s.sock, "status", "--watch"}, 60000000,
                      [](const std::string& out) {
                        return out.find("] ") != std::string::npos &&
                               out.find("% ") != std::string::npos &&
                               CountOf(out, "\x1b[H\x1b[2J") >= 3;
                      });
  INFO(r.output.substr(r.output.size() > 3000 ? r.output.size() - 3000 : 0));
  CHECK(ExitStatus(r.status) == 0);
  CHECK(CountOf(r.output, "\x1b[H\x1b[2J") >= 3);
  CHECK(r.output.find("          [#") != std::string::npos);
  CHECK(r.output.find("  ETA ") != std::string::npos);
  CHECK(r.output.find("UPSTREAM  cloud  mqtt://127.0.0.1:" + std::to_string(bo.port) +
                      "  connected for ") != std::string::npos);
  // And it drains completely.
  REQUIRE(WaitUntil(
      [&] { return s.Status(&st) && st.AtPath("$.upstreams[0].backlog")->AsNumber() == 0; },
      120000000, 200000));
  CHECK(st.AtPath("$.upstreams[0].drain_eta_s")->AsNumber() == 0);
  CHECK(ExitStatus(s.d.Terminate()) == 0);
}

}  // namespace
}  // namespace testing
}  // namespace sluice
