// `command` driver against real shell scripts written into a TempDir.
#include "drivers/command.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <catch2/catch.hpp>
#include <cerrno>
#include <string>
#include <thread>

#include "common/clock.h"
#include "drivers/scheduler.h"
#include "drivers/subprocess.h"
#include "drivers/value_text.h"
#include "make_driver.h"
#include "test_sink.h"
#include "tests/support/support.h"

using namespace sluice;
using sluice::testing::Quote;
using sluice::testing::TempDir;

namespace {

// Writes an executable /bin/sh script and returns its path.
std::string Script(const TempDir& dir, const std::string& name, const std::string& body) {
  std::string path = dir.Join(name);
  REQUIRE(sluice::testing::WriteFile(path, "#!/bin/sh\n" + body));
  REQUIRE(chmod(path.c_str(), 0755) == 0);
  return path;
}

std::unique_ptr<Driver> MustMake(const std::string& params, Clock& clock,
                                 int64_t interval_us = 1000000) {
  StatusOr<std::unique_ptr<Driver>> d =
      sluice::testing::MakeDriver(clock, "command", params, "cmd", interval_us);
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  return std::move(*d);
}

std::string ArgvOf(const std::string& path) { return "{ argv = [" + Quote(path) + "] }"; }

// True once `pid` is gone or a zombie (killed, waiting for init to reap it).
bool Dead(pid_t pid) {
  std::string stat = sluice::testing::ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && stat.size() > paren + 2 && stat[paren + 2] == 'Z';
}

// No child of this process is left unreaped.
bool NoZombies() {
  int status;
  return waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD;
}

pid_t ReadPid(const std::string& path) {
  return static_cast<pid_t>(std::atol(sluice::testing::ReadFile(path).c_str()));
}

}  // namespace

TEST_CASE("command output parsing") {
  CHECK(*ParseCommandOutput("21.5\n", "") == 21.5);
  CHECK(*ParseCommandOutput("  -3e2 \r\n", "") == -300);
  CHECK(*ParseCommandOutput("+7", "") == 7);
  CHECK_THAT(ParseCommandOutput("", "").status().message(), Catch::Equals("no output"));
  CHECK_THAT(ParseCommandOutput("\n\n", "").status().message(), Catch::Equals("no output"));
  CHECK_THAT(ParseCommandOutput("hello\n", "").status().message(),
             Catch::Contains("output is not a number: \"hello\""));
  CHECK_FALSE(ParseCommandOutput("12abc", "").ok());
  CHECK_FALSE(ParseCommandOutput("nan", "").ok());
  CHECK_FALSE(ParseCommandOutput("inf", "").ok());
  CHECK_FALSE(ParseCommandOutput("0x10", "").ok());
  CHECK_FALSE(ParseCommandOutput("--1", "").ok());
  CHECK_FALSE(ParseCommandOutput("+-1", "").ok());
  CHECK_THAT(ParseCommandOutput("a=1\nb=2\n", "").status().message(),
             Catch::Contains("set param \"field\""));

  const std::string lines = "# comment\ntemp = 21.5\nhum=40\nbad=x\n\nlast=1";
  CHECK(*ParseCommandOutput(lines, "temp") == 21.5);
  CHECK(*ParseCommandOutput(lines, "hum") == 40);
  CHECK(*ParseCommandOutput(lines, "last") == 1);
  CHECK_THAT(ParseCommandOutput(lines, "bad").status().message(),
             Catch::Contains("\"bad=\" line: not a number: \"x\""));
  CHECK_THAT(
      ParseCommandOutput(lines, "pressure").status().message(),
      Catch::Contains("no line \"pressure=...\" in the output (names: temp, hum, bad, last)"));
}

TEST_CASE("command runs a program with arguments, no shell") {
  TempDir dir;
  FakeClock clock;
  std::string s = Script(dir, "arg.sh", "echo \"$1\"\n");
  auto d = MustMake("{ argv = [" + Quote(s) + ", \"4.25\"] }", clock);
  CHECK(d->polled());
  CHECK(d->blocking());
  StatusOr<double> v = d->Sample(0);
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  CHECK(*v == 4.25);

  // No shell: "$HOME" and ";" reach the program literally.
  auto lit = MustMake("{ argv = [" + Quote(s) + ", \"1; echo 2\"] }", clock);
  CHECK_THAT(lit->Sample(0).status().message(), Catch::Contains("not a number: \"1; echo 2\""));
  CHECK(NoZombies());
}

TEST_CASE("command with shell = true runs one string through /bin/sh -c") {
  FakeClock clock;
  auto d = MustMake("{ argv = \"echo $((6 * 7)) | tr -d ' '\", shell = true }", clock);
  CHECK(*d->Sample(0) == 42);
  auto l = MustMake("{ argv = [\"echo 1.5\"], shell = true }", clock);
  CHECK(*l->Sample(0) == 1.5);
  CHECK(NoZombies());
}

TEST_CASE("command picks its name=value line") {
  TempDir dir;
  FakeClock clock;
  std::string s = Script(dir, "multi.sh", "echo temp=21.5\necho hum=40\n");
  auto temp = MustMake("{ argv = [" + Quote(s) + "], field = \"temp\" }", clock);
  auto hum = MustMake("{ argv = [" + Quote(s) + "], field = \"hum\" }", clock);
  auto none = MustMake("{ argv = [" + Quote(s) + "], field = \"pressure\" }", clock);
  CHECK(*temp->Sample(0) == 21.5);
  CHECK(*hum->Sample(0) == 40);
  Status st = none->Sample(0).status();
  CHECK_THAT(st.message(), Catch::Contains("no line \"pressure=...\""));
  CHECK_THAT(st.message(), Catch::Contains(s));
}

TEST_CASE("sensors naming one argv share one run per interval") {
  TempDir dir;
  FakeClock clock;
  std::string counter = dir.Join("runs");
  std::string s = Script(dir, "count.sh", "echo x >> '" + counter + "'\necho a=1; echo b=2\n");
  auto a = MustMake("{ argv = [" + Quote(s) + "], field = \"a\" }", clock, 10000000);
  auto b = MustMake("{ argv = [" + Quote(s) + "], field = \"b\" }", clock, 10000000);
  auto& ca = static_cast<CommandDriver&>(*a).command();
  auto& cb = static_cast<CommandDriver&>(*b).command();
  CHECK(&ca == &cb);

  CHECK(*a->Sample(0) == 1);
  CHECK(*b->Sample(0) == 2);
  CHECK(ca.runs() == 1);
  CHECK(sluice::testing::ReadFile(counter) == "x\n");

  clock.Advance(4000000);  // within half an interval: still the same run
  CHECK(*a->Sample(0) == 1);
  CHECK(ca.runs() == 1);

  clock.Advance(6000000);  // the next interval: one new run for both
  CHECK(*b->Sample(0) == 2);
  CHECK(*a->Sample(0) == 1);
  CHECK(ca.runs() == 2);
  CHECK(sluice::testing::ReadFile(counter) == "x\nx\n");

  // A different argv is a different command.
  auto other = MustMake("{ argv = [" + Quote(s) + ", \"extra\"], field = \"a\" }", clock);
  CHECK(&static_cast<CommandDriver&>(*other).command() != &ca);
}

TEST_CASE("concurrent samples of a shared command wait for one run") {
  TempDir dir;
  FakeClock clock;
  std::string counter = dir.Join("runs");
  std::string s = Script(dir, "slow.sh", "echo x >> '" + counter + "'\nsleep 0.3\necho a=1\n");
  auto a = MustMake("{ argv = [" + Quote(s) + "], field = \"a\" }", clock);
  auto b = MustMake("{ argv = [" + Quote(s) + "], field = \"a\" }", clock);
  std::atomic<int> ok{0};
  std::thread t1([&] { ok += a->Sample(0).ok() ? 1 : 0; });
  std::thread t2([&] { ok += b->Sample(0).ok() ? 1 : 0; });
  t1.join();
  t2.join();
  CHECK(ok == 2);
  CHECK(static_cast<CommandDriver&>(*a).command().runs() == 1);
  CHECK(sluice::testing::ReadFile(counter) == "x\n");
  CHECK(NoZombies());
}

TEST_CASE("command garbage output is an error") {
  TempDir dir;
  FakeClock clock;
  auto garbage = MustMake(ArgvOf(Script(dir, "g.sh", "echo hello world\n")), clock);
  CHECK_THAT(garbage->Sample(0).status().message(),
             Catch::Contains("output is not a number: \"hello world\""));
  auto binary = MustMake(ArgvOf(Script(dir, "b.sh", "printf '\\001\\002\\377'\n")), clock);
  CHECK_THAT(binary->Sample(0).status().message(), Catch::Contains("not a number: \"???\""));
  auto empty = MustMake(ArgvOf(Script(dir, "e.sh", "true\n")), clock);
  CHECK_THAT(empty->Sample(0).status().message(), Catch::Contains("no output"));
  auto nan = MustMake(ArgvOf(Script(dir, "n.sh", "echo nan\n")), clock);
  CHECK_FALSE(nan->Sample(0).ok());
}

TEST_CASE("command output over 64 KiB is an error and the writer is killed") {
  TempDir dir;
  FakeClock clock;
  auto huge =
      MustMake(ArgvOf(Script(dir, "h.sh", "head -c 70000 /dev/zero | tr '\\0' '1'\n")), clock);
  CHECK_THAT(huge->Sample(0).status().message(), Catch::Contains("output exceeds 65536 bytes"));
  // Endless output: stopped at the cap, not at the timeout.
  std::string pidfile = dir.Join("yes.pid");
  auto endless = MustMake(
      "{ argv = [" + Quote(Script(dir, "y.sh", "echo $$ > '" + pidfile + "'\nexec yes 1\n")) +
          "], timeout = \"60s\" }",
      clock);
  Status st = endless->Sample(0).status();
  CHECK(st.code() == StatusCode::kIoError);
  CHECK_THAT(st.message(), Catch::Contains("output exceeds"));
  pid_t pid = ReadPid(pidfile);
  REQUIRE(pid > 0);
  CHECK(Dead(pid));
  // Exactly 64 KiB is fine.
  auto max = MustMake(ArgvOf(Script(dir, "m.sh", "printf '%65535s' 7\n")), clock);
  CHECK(*max->Sample(0) == 7);
  CHECK(NoZombies());
}

TEST_CASE("command exit status and signals carry stderr's last line") {
  TempDir dir;
  FakeClock clock;
  auto fail = MustMake(ArgvOf(Script(dir, "f.sh",
                                     "echo 12\necho 'warming up' >&2\n"
                                     "echo 'sensor not found' >&2\necho '  ' >&2\nexit 3\n")),
                       clock);
  Status st = fail->Sample(0).status();
  CHECK_THAT(st.message(), Catch::EndsWith("f.sh: exit status 3: sensor not found"));

  auto quiet = MustMake(ArgvOf(Script(dir, "q.sh", "exit 1\n")), clock);
  CHECK_THAT(quiet->Sample(0).status().message(),
             Catch::Contains("exit status 1 (nothing on stderr)"));

  auto segv = MustMake(ArgvOf(Script(dir, "s.sh", "echo dying >&2\nkill -SEGV $$\n")), clock);
  CHECK_THAT(segv->Sample(0).status().message(),
             Catch::Contains("killed by signal 11 (SIGSEGV): dying"));

  auto missing = MustMake(ArgvOf(dir.Join("does-not-exist")), clock);
  st = missing->Sample(0).status();
  CHECK(st.code() == StatusCode::kNotFound);
  CHECK_THAT(st.message(), Catch::Contains("cannot run"));
  CHECK_THAT(st.message(), Catch::Contains("No such file or directory"));

  std::string noexec = dir.Join("noexec.sh");
  REQUIRE(sluice::testing::WriteFile(noexec, "#!/bin/sh\necho 1\n"));
  auto denied = MustMake(ArgvOf(noexec), clock);
  CHECK_THAT(denied->Sample(0).status().message(), Catch::Contains("Permission denied"));
  CHECK(NoZombies());
}

TEST_CASE("command timeout kills the whole process group") {
  TempDir dir;
  FakeClock clock;
  std::string gpid = dir.Join("grandchild.pid");
  // The grandchild inherits stdout: only the group kill frees the pipe.
  std::string s =
      Script(dir, "hang.sh", "sleep 60 &\necho $! > '" + gpid + "'\necho 1\nsleep 60\n");
  auto d = MustMake("{ argv = [" + Quote(s) + "], timeout = \"300ms\" }", clock);
  CHECK(static_cast<CommandDriver&>(*d).timeout_us() == 300000);
  Status st = d->Sample(0).status();
  CHECK(st.code() == StatusCode::kTimeout);
  CHECK_THAT(st.message(), Catch::Contains("timed out after 300.0ms (process group killed)"));
  pid_t grandchild = ReadPid(gpid);
  REQUIRE(grandchild > 0);
  CHECK(sluice::testing::WaitUntil([&] { return Dead(grandchild); }, 5000000));
  CHECK(NoZombies());
}

TEST_CASE("a background process left behind does not hold a finished run") {
  TempDir dir;
  FakeClock clock;
  std::string gpid = dir.Join("bg.pid");
  std::string s = Script(dir, "bg.sh", "sleep 60 &\necho $! > '" + gpid + "'\necho 5\n");
  // Waiting for EOF would time out after 60 s and fail the sample.
  auto d = MustMake("{ argv = [" + Quote(s) + "], timeout = \"60s\" }", clock);
  StatusOr<double> v = d->Sample(0);
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  CHECK(*v == 5);
  pid_t bg = ReadPid(gpid);
  REQUIRE(bg > 0);
  CHECK(sluice::testing::WaitUntil([&] { return Dead(bg); }, 5000000));
}

TEST_CASE("the child gets /dev/null, its own group, no inherited fds, default signals") {
  TempDir dir;
  FakeClock clock;
  // A descriptor without O_CLOEXEC at a known number, and SIGPIPE ignored as
  // sluiced does.
  int fd = open("/dev/null", O_RDONLY);
  REQUIRE(fd >= 0);
  REQUIRE(dup2(fd, 77) == 77);
  close(fd);
  auto old = signal(SIGPIPE, SIG_IGN);
  std::string s = Script(dir, "env.sh",
                         "[ -e /proc/$$/fd/77 ] && echo leaked=1 || echo leaked=0\n"
                         "[ \"$(readlink /proc/$$/fd/0)\" = /dev/null ] && echo null=1\n"
                         "[ \"$(cut -d' ' -f5 /proc/$$/stat)\" = $$ ] && echo leader=1\n"
                         // Signals 1..28 (glibc leaves its internal 32, 33 ignored).
                         "case $(awk '/SigIgn/ {print substr($2, 10)}' /proc/$$/status) in\n"
                         "  0000000) echo sigdfl=1;; *) echo sigdfl=0;; esac\n");
  for (const char* f : {"leaked", "null", "leader", "sigdfl"}) {
    auto d = MustMake("{ argv = [" + Quote(s) + "], field = \"" + f + "\" }", clock);
    StatusOr<double> v = d->Sample(0);
    INFO(f << ": " << v.status().ToString());
    REQUIRE(v.ok());
    CHECK(*v == (std::string(f) == "leaked" ? 0 : 1));
  }
  signal(SIGPIPE, old);
  close(77);
}

TEST_CASE("command config errors name FILE:LINE:COL") {
  FakeClock clock;
  auto err = [&](const std::string& params) {
    StatusOr<std::unique_ptr<Driver>> d =
        sluice::testing::MakeDriver(clock, "command", params, "cmd");
    REQUIRE_FALSE(d.ok());
    return d.status().message();
  };
  CHECK_THAT(err("{ field = \"a\" }"), Catch::Contains("param \"argv\" is required"));
  CHECK_THAT(err("{ argv = \"/bin/echo 1\" }"),
             Catch::StartsWith("t.toml:2:19: sensor \"cmd\": param \"argv\" must be a list"));
  CHECK_THAT(err("{ argv = [] }"), Catch::Contains("must name a program"));
  CHECK_THAT(err("{ argv = [1, 2] }"), Catch::Contains("must be a list of strings"));
  CHECK_THAT(err("{ argv = [\"echo\", \"1\"], shell = true }"),
             Catch::Contains("with shell = true must be one command line"));
  CHECK_THAT(err("{ argv = [\"/bin/true\"], shell = \"yes\" }"), Catch::Contains("boolean"));
  CHECK_THAT(err("{ argv = [\"/bin/true\"], field = \"a=b\" }"),
             Catch::Contains("param \"field\" must be a name"));
  CHECK_THAT(err("{ argv = [\"/bin/true\"], field = \"\" }"), Catch::Contains("\"field\""));
  CHECK_THAT(err("{ argv = [\"/bin/true\"], timeout = \"soon\" }"),
             Catch::Contains("\"timeout\" must be a duration"));
  CHECK_THAT(err("{ argv = [\"/bin/true\"], fields = \"a\" }"),
             Catch::StartsWith("t.toml:2:34: sensor \"cmd\": unknown param \"fields\" for "
                               "driver \"command\""));
}

TEST_CASE("command timeout defaults to min(interval, 10s)") {
  FakeClock clock;
  auto fast = MustMake("{ argv = [\"/bin/true\"] }", clock, 2000000);
  CHECK(static_cast<CommandDriver&>(*fast).timeout_us() == 2000000);
  auto slow = MustMake("{ argv = [\"/bin/true\"] }", clock, 60000000);
  CHECK(static_cast<CommandDriver&>(*slow).timeout_us() == 10000000);
}

TEST_CASE("numbers and snippets of device text") {
  CHECK(*ParsePlainNumber("\t1.5e-3\r\n") == 0.0015);
  CHECK_FALSE(ParsePlainNumber("1,5").ok());
  CHECK_FALSE(ParsePlainNumber("1 2").ok());
  CHECK_FALSE(ParsePlainNumber("1e999").ok());
  CHECK(Snippet("21.5 \xc2\xb0"
                "C") ==
        "21.5 \xc2\xb0"
        "C");                                 // UTF-8 kept
  CHECK(Snippet("a\x01\xff\xc2") == "a???");  // control, invalid, truncated
  CHECK(Snippet("abcdef", 3) == "abc...");
  CHECK(Snippet("ab\xc2\xb0", 3) == "ab...");  // never cuts a character in two
}

TEST_CASE("LastNonEmptyLine") {
  CHECK(LastNonEmptyLine("a\nb\n\n  \n") == "b");
  CHECK(LastNonEmptyLine("  only  ") == "only");
  CHECK(LastNonEmptyLine("\n\n").empty());
  CHECK(LastNonEmptyLine("").empty());
  CHECK(LastNonEmptyLine("x\n\tbad\x01line\r\n") == "bad line");
  CHECK(LastNonEmptyLine(std::string(300, 'e'), 10) == "eeeeeeeeee...");
}

// 20 sensors sharing one slow script (1 s a run, a 500 ms interval) beside
// a fast command sensor and a fast sysfs sensor (200 ms), on a small pool:
// one shared run at a time serves every slow sensor, waiting for it holds
// no worker, and the fast sensors keep their cadence.
TEST_CASE("sensors sharing one slow command do not starve the other blocking sensors") {
  TempDir dir;
  SystemClock& clock = SystemClock::Get();
  std::string counter = dir.Join("runs");
  std::string slow_sh =
      Script(dir, "slow.sh", "echo x >> '" + counter + "'\nsleep 1\necho 7\n");
  std::string fast_sh = Script(dir, "fast.sh", "echo 1\n");
  std::string value = dir.Join("value");
  REQUIRE(sluice::testing::WriteFile(value, "42\n"));

  TestSink sink;
  Scheduler::Options o;
  o.pool_base = 2;
  o.pool_max = 4;
  o.seed = 1;
  Scheduler sched(clock, sink, o);
  std::vector<std::unique_ptr<Driver>> drivers;
  std::vector<SensorSpec> specs;
  auto add = [&](const std::string& name, const std::string& driver, const std::string& params,
                 int64_t interval_us) {
    SensorSpec spec;
    StatusOr<std::unique_ptr<Driver>> d =
        sluice::testing::MakeDriver(clock, driver, params, name, interval_us, &spec);
    INFO(d.status().ToString());
    REQUIRE(d.ok());
    drivers.push_back(std::move(*d));
    REQUIRE(sched.Add(spec, *drivers.back()).ok());
  };
  for (int i = 0; i < 20; ++i) {
    add("slow" + std::to_string(i), "command",
        "{ argv = [" + Quote(slow_sh) + "], timeout = \"2500ms\" }", 500000);
  }
  add("fast.cmd", "command", ArgvOf(fast_sh), 200000);
  add("fast.sysfs", "sysfs", "{ path = " + Quote(value) + " }", 200000);
  sched.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(3200));
  sched.Stop();

  SensorStatus cmd, sysfs, slow;
  REQUIRE(sched.GetStatus("fast.cmd", &cmd));
  REQUIRE(sched.GetStatus("fast.sysfs", &sysfs));
  // About 16 slots each in 3.2 s; starved, they were read once or twice.
  CHECK(cmd.reads >= 8);
  CHECK(sysfs.reads >= 8);
  CHECK(cmd.errors == 0);
  CHECK(sysfs.errors == 0);
  // One run at a time, each serving every slow sensor: at most 4 runs of
  // 1 s in 3.2 s, and no slow read timed out (2.5 s from its run's start).
  uint64_t runs = static_cast<CommandDriver&>(*drivers[0]).command().runs();
  CHECK(runs >= 2);
  CHECK(runs <= 4);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(sched.GetStatus("slow" + std::to_string(i), &slow));
    INFO(slow.name << " " << slow.last_error);
    CHECK(slow.timeouts == 0);
    CHECK(slow.submitted >= 2);
  }
  CHECK(NoZombies());
}
