#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <thread>

#include "common/clock.h"
#include "drivers/scheduler.h"
#include "test_sink.h"

using namespace sluice;

namespace {

constexpr int64_t kSec = 1000000;

// A polled driver returning scripted values; fails while `fail` is set.
class ScriptDriver : public Driver {
 public:
  bool polled() const override { return true; }
  StatusOr<double> Sample(int64_t wall_us) override {
    ++calls;
    last_wall = wall_us;
    if (fail) return IoError("sensor unplugged");
    if (nan) return std::nan("");
    return value;
  }
  double value = 1.0;
  bool fail = false;
  bool nan = false;
  int calls = 0;
  int64_t last_wall = 0;
};

SensorSpec Spec(const std::string& name, int64_t interval_us) {
  SensorSpec s;
  s.name = name;
  s.driver = "script";
  s.interval_us = interval_us;
  s.unit = "C";
  return s;
}

Scheduler::Options Opts() {
  Scheduler::Options o;
  o.seed = 1;
  o.submit_timeout_us = 1000;
  return o;
}

}  // namespace

TEST_CASE("deadlines stay on the grid over 10,000 intervals") {
  FakeClock clock;
  TestSink sink;
  Scheduler sched(clock, sink, Opts());
  ScriptDriver d;
  const int64_t interval = 250000;
  REQUIRE(sched.Add(Spec("a", interval), d).ok());
  const int64_t start = clock.NowMonotonicUs();
  int64_t next = sched.RunDue(start);
  CHECK(next == start + interval);
  for (int i = 1; i <= 10000; ++i) {
    // Arrive late by a varying amount (less than one interval) each time.
    int64_t late = (i * 7919) % (interval - 1);
    clock.Advance(next + late - clock.NowMonotonicUs());
    next = sched.RunDue(clock.NowMonotonicUs());
    REQUIRE(next == start + static_cast<int64_t>(i + 1) * interval);
  }
  SchedulerStats st = sched.stats();
  CHECK(st.reads == 10001);
  CHECK(st.missed == 0);
  CHECK(sink.size() == 10001);
  CHECK(st.jitter.samples == 10001);
  CHECK(st.jitter.max_us > 0);
  CHECK(st.jitter.max_us < interval);
  CHECK(st.jitter.p50_us <= st.jitter.p99_us);
  CHECK(st.jitter.p99_us <= st.jitter.max_us);
}

TEST_CASE("missed slots are skipped and counted") {
  FakeClock clock;
  TestSink sink;
  Scheduler sched(clock, sink, Opts());
  ScriptDriver d;
  REQUIRE(sched.Add(Spec("a", kSec), d).ok());
  const int64_t start = clock.NowMonotonicUs();
  sched.RunDue(start);
  clock.Advance(5 * kSec + 300000);  // slots at +1..+5 due; +1..+4 missed
  int64_t next = sched.RunDue(clock.NowMonotonicUs());
  CHECK(next == start + 6 * kSec);
  SensorStatus s;
  REQUIRE(sched.GetStatus("a", &s));
  CHECK(s.missed == 4);
  CHECK(s.reads == 2);
  CHECK(sched.stats().jitter.max_us == 300000);
}

TEST_CASE("scale, offset and wall-clock timestamps") {
  FakeClock clock;
  TestSink sink;
  Scheduler sched(clock, sink, Opts());
  ScriptDriver d;
  d.value = 10;
  SensorSpec spec = Spec("t", kSec);
  spec.scale = 0.5;
  spec.offset = -2;
  REQUIRE(sched.Add(spec, d).ok());
  clock.SetWall(1764075600000000);
  sched.RunDue(clock.NowMonotonicUs());
  auto r = sink.readings();
  REQUIRE(r.size() == 1);
  CHECK(r[0].sensor == "t");
  CHECK(r[0].value == 3.0);
  CHECK(r[0].unit == "C");
  CHECK(r[0].ts_us == 1764075600000000);
  CHECK(r[0].quality == Quality::kGood);
  CHECK(d.last_wall == 1764075600000000);
}

TEST_CASE("deadband holds back small moves; heartbeat submits anyway") {
  FakeClock clock;
  TestSink sink;
  Scheduler sched(clock, sink, Opts());
  ScriptDriver d;
  SensorSpec spec = Spec("db", kSec);
  spec.deadband = 1.0;
  spec.heartbeat_us = 5 * kSec;
  REQUIRE(sched.Add(spec, d).ok());
  // value per tick; expect submitted?
  struct Step {
    double v;
    bool submitted;
  };
  std::vector<Step> steps = {
      {10, true},    // t0: first reading always
      {10.5, false}, // t1
      {11.0, false}, // t2: |11-10| = 1, not > 1
      {11.2, true},  // t3: moved 1.2
      {11.5, false}, // t4
      {11.5, false}, // t5
      {11.5, false}, // t6
      {11.5, false}, // t7
      {11.5, true},  // t8: heartbeat, 5 s after t3
      {11.5, false}, // t9
  };
  int64_t next = clock.NowMonotonicUs();
  size_t expected = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    d.value = steps[i].v;
    clock.Advance(next - clock.NowMonotonicUs());
    next = sched.RunDue(clock.NowMonotonicUs());
    if (steps[i].submitted) ++expected;
    INFO("step " << i);
    REQUIRE(sink.size() == expected);
  }
  SensorStatus s;
  REQUIRE(sched.GetStatus("db", &s));
  CHECK(s.submitted == 3);
  CHECK(s.suppressed == 7);
  CHECK(s.last_value == 11.5);
}

TEST_CASE("a full sink drops readings without stalling other sensors") {
  FakeClock clock;
  TestSink sink;
  sink.SetRefuse(true);
  Scheduler sched(clock, sink, Opts());
  ScriptDriver a, b;
  REQUIRE(sched.Add(Spec("a", kSec), a).ok());
  REQUIRE(sched.Add(Spec("b", kSec), b).ok());
  sched.RunDue(clock.NowMonotonicUs());
  SchedulerStats st = sched.stats();
  CHECK(st.dropped == 2);
  CHECK(st.reads == 2);
  // Once refused, the next reading is retried (no deadband state was set).
  sink.SetRefuse(false);
  clock.Advance(kSec);
  sched.RunDue(clock.NowMonotonicUs());
  CHECK(sink.size() == 2);
}

TEST_CASE("a failing sensor is marked, backs off on its grid and recovers") {
  FakeClock clock;
  TestSink sink;
  Scheduler::Options o = Opts();
  o.backoff_initial_us = 4 * kSec;
  o.backoff_max_us = 16 * kSec;
  Scheduler sched(clock, sink, o);
  ScriptDriver bad, good;
  const int64_t interval = kSec;
  REQUIRE(sched.Add(Spec("bad", interval), bad).ok());
  REQUIRE(sched.Add(Spec("good", interval), good).ok());
  const int64_t start = clock.NowMonotonicUs();
  bad.fail = true;

  // Run for 60 s tick by tick (bounded loop).
  for (int i = 0; i < 60; ++i) {
    sched.RunDue(clock.NowMonotonicUs());
    clock.Advance(interval);
  }
  SensorStatus s;
  REQUIRE(sched.GetStatus("bad", &s));
  CHECK(s.failing);
  CHECK(s.last_error == "sensor unplugged");
  CHECK(s.errors == static_cast<uint64_t>(bad.calls));
  CHECK(s.consecutive_failures == bad.calls);
  // Backoff: far fewer attempts than ticks (delays 2-4 s, 4-8, 8-16, then capped).
  CHECK(bad.calls >= 4);
  CHECK(bad.calls <= 12);
  REQUIRE(sched.GetStatus("good", &s));
  CHECK_FALSE(s.failing);
  CHECK(s.reads == 60);
  CHECK(sched.stats().failing == 1);

  // Recovery: within the capped delay the sensor is sampled again and stays on grid.
  bad.fail = false;
  for (int i = 0; i < 20; ++i) {
    sched.RunDue(clock.NowMonotonicUs());
    clock.Advance(interval);
  }
  REQUIRE(sched.GetStatus("bad", &s));
  CHECK_FALSE(s.failing);
  CHECK(s.consecutive_failures == 0);
  CHECK(s.last_error == "sensor unplugged");  // kept for the CLI
  CHECK(s.has_value);
  // After recovery it samples every tick again.
  int before = bad.calls;
  int64_t next = sched.RunDue(clock.NowMonotonicUs());
  clock.Advance(interval);
  sched.RunDue(clock.NowMonotonicUs());
  CHECK(bad.calls == before + 2);
  CHECK((next - start) % interval == 0);
}

TEST_CASE("NaN from a driver counts as a failure") {
  FakeClock clock;
  TestSink sink;
  Scheduler sched(clock, sink, Opts());
  ScriptDriver d;
  d.nan = true;
  REQUIRE(sched.Add(Spec("n", kSec), d).ok());
  sched.RunDue(clock.NowMonotonicUs());
  SensorStatus s;
  REQUIRE(sched.GetStatus("n", &s));
  CHECK(s.failing);
  CHECK_THAT(s.last_error, Catch::Contains("non-finite"));
  CHECK(sink.size() == 0);
}

TEST_CASE("Add rejects bad sensors") {
  FakeClock clock;
  TestSink sink;
  Scheduler sched(clock, sink, Opts());
  ScriptDriver d;
  CHECK_FALSE(sched.Add(Spec("z", 0), d).ok());
  REQUIRE(sched.Add(Spec("z", kSec), d).ok());
  CHECK_FALSE(sched.Add(Spec("z", kSec), d).ok());
  class Active : public Driver {
   public:
    bool polled() const override { return false; }
  } active;
  CHECK_FALSE(sched.Add(Spec("p", kSec), active).ok());
  CHECK(sched.RunDue(clock.NowMonotonicUs()) == clock.NowMonotonicUs() + kSec);
}

TEST_CASE("RunDue on an empty scheduler returns no deadline") {
  FakeClock clock;
  TestSink sink;
  Scheduler sched(clock, sink, Opts());
  CHECK(sched.RunDue(clock.NowMonotonicUs()) == std::numeric_limits<int64_t>::max());
}

TEST_CASE("the scheduler thread samples on the real clock and stops promptly") {
  TestSink sink;
  Scheduler sched(SystemClock::Get(), sink, Opts());
  ScriptDriver a;
  ScriptDriver b;
  REQUIRE(sched.Add(Spec("fast", 2000), a).ok());
  sched.Start();
  REQUIRE(sched.Add(Spec("late-added", 3000), b).ok());  // after Start
  CHECK(sink.WaitFor(20) >= 20);
  sched.Stop();
  sched.Stop();  // idempotent
  size_t n = sink.size();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(sink.size() == n);  // nothing after Stop()
  CHECK(sched.stats().jitter.samples >= 20);
  SensorStatus s;
  REQUIRE(sched.GetStatus("late-added", &s));
  CHECK(sched.Statuses().size() == 2);
}

TEST_CASE("a flapping sensor's recovered lines are rate limited like its failures") {
  FakeClock clock;
  TestSink sink;
  Scheduler::Options o = Opts();
  o.backoff_initial_us = kSec;
  o.backoff_max_us = kSec;
  o.log_interval_us = 10 * kSec;
  Scheduler sched(clock, sink, o);
  ScriptDriver d;
  REQUIRE(sched.Add(Spec("flap", kSec), d).ok());
  // Capture stderr (the log) in a temp file for the run.
  char path[] = "/tmp/sluice-flap-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  REQUIRE(dup2(fd, 2) == 2);
  for (int i = 0; i < 60; ++i) {
    d.fail = i % 2 == 0;  // fails, recovers, fails, ... for 60 s
    sched.RunDue(clock.NowMonotonicUs());
    clock.Advance(kSec);
  }
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string log;
  char buf[4096];
  ssize_t n;
  lseek(fd, 0, SEEK_SET);
  while ((n = read(fd, buf, sizeof buf)) > 0) log.append(buf, static_cast<size_t>(n));
  close(fd);
  unlink(path);
  size_t recovered = 0, failing = 0;
  for (size_t p = log.find("recovered"); p != std::string::npos; p = log.find("recovered", p + 1))
    ++recovered;
  for (size_t p = log.find("failing ("); p != std::string::npos; p = log.find("failing (", p + 1))
    ++failing;
  INFO(log);
  CHECK(d.calls >= 40);
  CHECK(failing >= 1);
  CHECK(failing <= 7);
  CHECK(recovered >= 1);
  CHECK(recovered <= 7);  // one per 10 s, not one per flap
}
