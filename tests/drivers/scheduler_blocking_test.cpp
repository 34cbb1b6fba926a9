// The Scheduler's worker pool for blocking drivers: reads that really block
// (read(2) on a pipe until the test writes a value), timeouts, hung sensors
// not starving the others, shutdown with a read hung, exceptions.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/clock.h"
#include "drivers/scheduler.h"
#include "test_sink.h"
#include "tests/support/support.h"

using namespace sluice;
using sluice::testing::WaitUntil;

namespace {

constexpr int64_t kSec = 1000000;
constexpr int64_t kWait = 10 * kSec;  // bound of every wait in this file

// A blocking driver whose Sample() blocks in read(2) on a pipe until the
// test writes one line ("21.5\n"), which it returns as the value. Bounded:
// gives up after 30 s so a broken scheduler fails the test, never hangs it.
class PipeDriver : public Driver {
 public:
  PipeDriver() { REQUIRE(pipe(fds_) == 0); }
  ~PipeDriver() override {
    close(fds_[0]);
    close(fds_[1]);
  }
  bool polled() const override { return true; }
  bool blocking() const override { return true; }
  StatusOr<double> Sample(int64_t /*wall_us*/) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      thread_ = std::this_thread::get_id();
    }
    ++calls;
    ++inside;
    std::string line;
    char c;
    while (line.size() < 64) {
      pollfd p{fds_[0], POLLIN, 0};
      if (poll(&p, 1, 30000) <= 0) break;
      if (read(fds_[0], &c, 1) != 1 || c == '\n') break;
      line += c;
    }
    --inside;
    if (line.empty()) return IoError("no value written");
    return std::stod(line);
  }
  // Lets one blocked (or the next) Sample() return `v`.
  void Release(double v) {
    std::string s = std::to_string(v) + "\n";
    REQUIRE(write(fds_[1], s.data(), s.size()) == static_cast<ssize_t>(s.size()));
  }
  std::thread::id thread() {
    std::lock_guard<std::mutex> lock(mu_);
    return thread_;
  }
  std::atomic<int> calls{0};
  std::atomic<int> inside{0};  // Sample() calls blocked right now

 private:
  int fds_[2];
  std::mutex mu_;
  std::thread::id thread_;
};

// Returns at once, from any thread; blocking() as told.
class QuickDriver : public Driver {
 public:
  explicit QuickDriver(bool blocking) : blocking_(blocking) {}
  bool polled() const override { return true; }
  bool blocking() const override { return blocking_; }
  StatusOr<double> Sample(int64_t) override {
    ++calls;
    if (throws) throw std::runtime_error("bad register map");
    return 7.0;
  }
  std::atomic<int> calls{0};
  bool throws = false;

 private:
  bool blocking_;
};

SensorSpec Spec(const std::string& name, int64_t interval_us, int64_t timeout_us = 0) {
  SensorSpec s;
  s.name = name;
  s.driver = "test";
  s.interval_us = interval_us;
  s.timeout_us = timeout_us;
  return s;
}

Scheduler::Options Opts(size_t base = 2, size_t max = 16) {
  Scheduler::Options o;
  o.seed = 1;
  o.submit_timeout_us = 1000;
  o.backoff_initial_us = 2 * kSec;
  o.backoff_max_us = 4 * kSec;
  o.pool_base = base;
  o.pool_max = max;
  return o;
}

// Waits until no worker runs a job that is not hung (the results are queued
// for the next RunDue()).
bool PoolSettles(Scheduler& s) {
  return WaitUntil(
      [&] {
        WorkerPoolStats p = s.stats().pool;
        return p.busy == p.hung && p.queued == 0;
      },
      kWait, 1000);
}

}  // namespace

TEST_CASE("blocking reads run on a worker and RunDue never waits for them") {
  FakeClock clock;
  TestSink sink;
  PipeDriver d;
  Scheduler sched(clock, sink, Opts());
  SensorSpec spec = Spec("slow", kSec);
  spec.scale = 2;
  spec.offset = 1;
  REQUIRE(sched.Add(spec, d).ok());
  const int64_t t0 = clock.NowMonotonicUs();
  // Returns while the read is blocked: the next thing due is its timeout.
  CHECK(sched.RunDue(t0) == t0 + kSec);
  REQUIRE(WaitUntil([&] { return d.inside.load() == 1; }, kWait, 1000));
  CHECK(sched.stats().in_flight == 1);
  CHECK(sink.size() == 0);
  d.Release(10);
  REQUIRE(PoolSettles(sched));
  CHECK(sched.RunDue(t0) == t0 + kSec);  // applies the result
  auto r = sink.readings();
  REQUIRE(r.size() == 1);
  CHECK(r[0].value == 21.0);
  CHECK(d.thread() != std::this_thread::get_id());
  SensorStatus s;
  REQUIRE(sched.GetStatus("slow", &s));
  CHECK(s.reads == 1);
  CHECK_FALSE(s.failing);
  CHECK(sched.stats().in_flight == 0);
  CHECK(sched.stats().jitter.samples == 1);
}

TEST_CASE("an overrunning read fails the sensor; its late result is discarded") {
  FakeClock clock;
  TestSink sink;
  PipeDriver d;
  Scheduler sched(clock, sink, Opts());
  REQUIRE(sched.Add(Spec("hang", kSec, 2 * kSec), d).ok());
  const int64_t t0 = clock.NowMonotonicUs();
  sched.RunDue(t0);
  REQUIRE(WaitUntil([&] { return d.inside.load() == 1; }, kWait, 1000));
  clock.Advance(2 * kSec - 1);
  sched.RunDue(clock.NowMonotonicUs());
  SensorStatus s;
  REQUIRE(sched.GetStatus("hang", &s));
  CHECK_FALSE(s.failing);  // not yet: 1 us short of its timeout
  clock.Advance(1);
  sched.RunDue(clock.NowMonotonicUs());
  REQUIRE(sched.GetStatus("hang", &s));
  CHECK(s.failing);
  CHECK(s.last_error == "read timed out after 2.0s");
  CHECK(s.errors == 1);
  CHECK(s.timeouts == 1);
  CHECK(sched.stats().pool.hung == 1);
  // Not dispatched again while the read hangs, however long.
  for (int i = 0; i < 20; ++i) {
    clock.Advance(kSec);
    sched.RunDue(clock.NowMonotonicUs());
  }
  CHECK(d.calls == 1);
  d.Release(5);
  REQUIRE(WaitUntil([&] { return sched.stats().pool.hung == 0; }, kWait, 1000));
  sched.RunDue(clock.NowMonotonicUs());
  CHECK(sink.size() == 0);  // the late value is discarded
  SchedulerStats st = sched.stats();
  CHECK(st.late_discarded == 1);
  CHECK(st.timeouts == 1);
  // Its next slot (after the backoff) lies in the past: sampled again at
  // once, missed slots skipped, and it recovers.
  CHECK(st.in_flight == 1);
  CHECK(st.missed > 0);
  REQUIRE(WaitUntil([&] { return d.calls.load() == 2; }, kWait, 1000));
  d.Release(6);
  REQUIRE(PoolSettles(sched));
  sched.RunDue(clock.NowMonotonicUs());
  REQUIRE(sink.size() == 1);
  CHECK(sink.readings()[0].value == 6.0);
  REQUIRE(sched.GetStatus("hang", &s));
  CHECK_FALSE(s.failing);
  CHECK(s.reads == 2);
}

TEST_CASE("the default timeout is min(interval, 10 s)") {
  FakeClock clock;
  TestSink sink;
  PipeDriver slow, fast;
  Scheduler sched(clock, sink, Opts());
  REQUIRE(sched.Add(Spec("minute", 60 * kSec), slow).ok());
  REQUIRE(sched.Add(Spec("second", 3 * kSec), fast).ok());
  sched.RunDue(clock.NowMonotonicUs());
  REQUIRE(WaitUntil([&] { return slow.inside + fast.inside == 2; }, kWait, 1000));
  clock.Advance(3 * kSec);
  sched.RunDue(clock.NowMonotonicUs());
  SensorStatus s;
  REQUIRE(sched.GetStatus("second", &s));
  CHECK(s.last_error == "read timed out after 3.0s");
  REQUIRE(sched.GetStatus("minute", &s));
  CHECK(s.errors == 0);
  clock.Advance(7 * kSec - 1);
  sched.RunDue(clock.NowMonotonicUs());
  REQUIRE(sched.GetStatus("minute", &s));
  CHECK(s.errors == 0);
  clock.Advance(1);
  sched.RunDue(clock.NowMonotonicUs());
  REQUIRE(sched.GetStatus("minute", &s));
  CHECK(s.last_error == "read timed out after 10.0s");
  slow.Release(1);
  fast.Release(1);
}

TEST_CASE("hung reads do not starve the other sensors; the pool grows up to its cap") {
  FakeClock clock;
  TestSink sink;
  const size_t max = GENERATE(16, 3);
  PipeDriver h1, h2;
  QuickDriver good(true), plain(false);
  Scheduler sched(clock, sink, Opts(2, max));
  REQUIRE(sched.Add(Spec("hung1", kSec), h1).ok());
  REQUIRE(sched.Add(Spec("hung2", kSec), h2).ok());
  REQUIRE(sched.Add(Spec("good", kSec), good).ok());
  REQUIRE(sched.Add(Spec("plain", kSec), plain).ok());
  sched.RunDue(clock.NowMonotonicUs());
  // Both base workers are blocked; "good" waits in the queue.
  REQUIRE(WaitUntil([&] { return h1.inside + h2.inside == 2; }, kWait, 1000));
  CHECK(sched.stats().pool.threads == 2);
  CHECK(plain.calls == 1);  // non-blocking drivers never wait for the pool
  for (int tick = 1; tick <= 10; ++tick) {
    clock.Advance(kSec);
    sched.RunDue(clock.NowMonotonicUs());  // tick 1: the hung reads time out
    REQUIRE(PoolSettles(sched));
    sched.RunDue(clock.NowMonotonicUs());
  }
  CHECK(plain.calls == 11);
  CHECK(good.calls >= 10);
  SensorStatus s;
  REQUIRE(sched.GetStatus("good", &s));
  CHECK_FALSE(s.failing);
  CHECK(s.submitted >= 10);
  WorkerPoolStats p = sched.stats().pool;
  CHECK(p.hung == 2);
  CHECK(p.threads == std::min<size_t>(max, 4));
  CHECK(p.peak_threads == std::min<size_t>(max, 4));
  CHECK(p.grown == std::min<size_t>(max, 4) - 2);
  CHECK(h1.calls == 1);
  CHECK(h2.calls == 1);
  // Once the hung reads return, the surplus threads exit.
  h1.Release(1);
  h2.Release(2);
  REQUIRE(WaitUntil([&] { return sched.stats().pool.threads == 2; }, kWait, 1000));
  CHECK(sched.stats().pool.hung == 0);
}

TEST_CASE("Stop() with a read hung: everything else stops; joined when the read returns") {
  TestSink sink;
  PipeDriver hung;
  QuickDriver good(true), plain(false);
  Scheduler sched(SystemClock::Get(), sink, Opts());
  REQUIRE(sched.Add(Spec("hung", 2000, 5000), hung).ok());
  REQUIRE(sched.Add(Spec("good", 2000), good).ok());
  REQUIRE(sched.Add(Spec("plain", 2000), plain).ok());
  sched.Start();
  // The hung read times out after 5 ms; the others keep running meanwhile.
  REQUIRE(WaitUntil([&] { return sched.stats().timeouts >= 1; }, kWait, 1000));
  const int good_then = good.calls;
  REQUIRE(WaitUntil([&] { return good.calls > good_then + 20 && plain.calls > 20; }, kWait, 1000));
  CHECK(hung.calls == 1);
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    sched.Stop();
    stopped = true;
  });
  // Stop() joins the scheduler thread and the idle workers at once...
  REQUIRE(WaitUntil([&] { return sched.stats().pool.threads == 1; }, kWait, 1000));
  const int good_stopped = good.calls, plain_stopped = plain.calls;
  CHECK_FALSE(stopped);  // ...and waits for the hung read, which is inside the driver
  CHECK(hung.inside == 1);
  hung.Release(3);
  REQUIRE(WaitUntil([&] { return stopped.load(); }, kWait, 1000));
  stopper.join();
  CHECK(good.calls == good_stopped);
  CHECK(plain.calls == plain_stopped);
  SchedulerStats st = sched.stats();
  CHECK(st.pool.threads == 0);
  CHECK(st.in_flight == 0);
  sched.Stop();  // idempotent
}

TEST_CASE("a driver that throws fails its sensor instead of the process") {
  FakeClock clock;
  TestSink sink;
  QuickDriver worker(true), inline_(false);
  Scheduler sched(clock, sink, Opts());
  worker.throws = true;
  inline_.throws = true;
  REQUIRE(sched.Add(Spec("w", kSec), worker).ok());
  REQUIRE(sched.Add(Spec("i", kSec), inline_).ok());
  sched.RunDue(clock.NowMonotonicUs());
  REQUIRE(PoolSettles(sched));
  sched.RunDue(clock.NowMonotonicUs());
  for (const char* name : {"w", "i"}) {
    SensorStatus s;
    REQUIRE(sched.GetStatus(name, &s));
    CHECK(s.failing);
    CHECK(s.last_error == "driver threw: bad register map");
  }
  CHECK(sink.size() == 0);
}

TEST_CASE("a read that never gets a worker (pool at its cap, all hung) fails its sensor") {
  FakeClock clock;
  TestSink sink;
  PipeDriver hung;
  QuickDriver good(true);
  Scheduler sched(clock, sink, Opts(1, 1));
  REQUIRE(sched.Add(Spec("hung", kSec), hung).ok());
  REQUIRE(sched.Add(Spec("good", kSec), good).ok());
  sched.RunDue(clock.NowMonotonicUs());
  REQUIRE(WaitUntil([&] { return hung.inside.load() == 1; }, kWait, 1000));
  CHECK(sched.stats().pool.queued == 1);  // "good" waits for the only worker
  clock.Advance(kSec);
  sched.RunDue(clock.NowMonotonicUs());
  SensorStatus s;
  REQUIRE(sched.GetStatus("good", &s));
  CHECK(s.failing);
  CHECK_THAT(s.last_error, Catch::Contains("no free worker for 1.0s (1 reads hung)"));
  REQUIRE(sched.GetStatus("hung", &s));
  CHECK_THAT(s.last_error, Catch::Contains("read timed out after 1.0s"));
  CHECK(good.calls == 0);
  // The hung read returns: the queued one runs, and both late results are
  // discarded (not applied to a slot that already failed).
  hung.Release(1);
  REQUIRE(WaitUntil([&] { return good.calls == 1; }, kWait, 1000));
  REQUIRE(PoolSettles(sched));
  sched.RunDue(clock.NowMonotonicUs());
  CHECK(sched.stats().late_discarded == 2);
  CHECK(sink.size() == 0);
  for (int i = 0; i < 20; ++i) hung.Release(1);  // let Stop() join later reads
}

TEST_CASE("status says a read is stuck, and when the sensor was last sampled") {
  FakeClock clock;
  TestSink sink;
  PipeDriver d;
  Scheduler sched(clock, sink, Opts());
  REQUIRE(sched.Add(Spec("fifo", kSec, kSec), d).ok());
  // One good read first.
  sched.RunDue(clock.NowMonotonicUs());
  REQUIRE(WaitUntil([&] { return d.inside.load() == 1; }, kWait, 1000));
  const int64_t sampled_wall = clock.NowWallUs();
  d.Release(3);
  REQUIRE(PoolSettles(sched));
  sched.RunDue(clock.NowMonotonicUs());
  SensorStatus s;
  REQUIRE(sched.GetStatus("fifo", &s));
  CHECK(s.state == "ok");
  CHECK(s.last_sample_ts_us == sampled_wall);
  // The next read hangs (a FIFO nobody writes): failing at its timeout,
  // then "stuck" for as long as it hangs, never frozen at "failing".
  clock.Advance(kSec);
  sched.RunDue(clock.NowMonotonicUs());
  REQUIRE(WaitUntil([&] { return d.inside.load() == 1; }, kWait, 1000));
  const int64_t hung_at = clock.NowMonotonicUs();
  for (int i = 0; i < 40; ++i) {
    clock.Advance(kSec);
    sched.RunDue(clock.NowMonotonicUs());
  }
  REQUIRE(sched.GetStatus("fifo", &s));
  CHECK(s.state == "stuck");
  CHECK(s.stuck_for_us == clock.NowMonotonicUs() - hung_at);
  CHECK(s.last_error == "read timed out after 1.0s");
  CHECK(s.last_sample_ts_us == sampled_wall);  // the hung read never returned
  CHECK(sched.Statuses()[0].state == "stuck");
  d.Release(4);
  REQUIRE(WaitUntil([&] { return sched.stats().pool.hung == 0; }, kWait, 1000));
  sched.RunDue(clock.NowMonotonicUs());  // discarded; sampled again at once
  REQUIRE(WaitUntil([&] { return d.calls.load() == 3; }, kWait, 1000));
  REQUIRE(sched.GetStatus("fifo", &s));
  CHECK(s.state != "stuck");
  CHECK(s.stuck_for_us == 0);
  d.Release(5);
  REQUIRE(PoolSettles(sched));
  sched.RunDue(clock.NowMonotonicUs());
  REQUIRE(sched.GetStatus("fifo", &s));
  CHECK(s.state == "ok");
}

TEST_CASE("a sensor overdue by several intervals is late, not ok") {
  FakeClock clock;
  TestSink sink;
  QuickDriver quick(false);
  Scheduler sched(clock, sink, Opts());
  REQUIRE(sched.Add(Spec("starved", kSec), quick).ok());
  sched.RunDue(clock.NowMonotonicUs());
  SensorStatus s;
  REQUIRE(sched.GetStatus("starved", &s));
  CHECK(s.state == "ok");
  // Nothing samples it (a scheduler that cannot keep up) for 2 intervals:
  // still ok; past kLateIntervals (3) intervals beyond its due time: late.
  clock.Advance(3 * kSec);
  REQUIRE(sched.GetStatus("starved", &s));
  CHECK(s.state == "ok");
  CHECK(s.overdue_us == 2 * kSec);
  clock.Advance(2 * kSec);
  REQUIRE(sched.GetStatus("starved", &s));
  CHECK(s.state == "late");
  CHECK(s.overdue_us == 4 * kSec);
  sched.RunDue(clock.NowMonotonicUs());
  REQUIRE(sched.GetStatus("starved", &s));
  CHECK(s.state == "ok");
  CHECK(s.overdue_us == 0);
}
