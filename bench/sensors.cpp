// `sluice-bench sensors`: what sampling costs. Simulated sensors through
// the real Scheduler (its own thread, the system clock, absolute deadlines)
// for a fixed wall time, in two cases -- 1,000 sensors at 1 Hz and 10
// sensors at 1 kHz -- each into two sinks:
//   ring:     the daemon's RingSink into a real Ring (durability normal,
//             20 ms group commit), i.e. the whole ingest path;
//   counting: a sink that only counts (the baseline: the scheduler and
//             drivers alone, measured in the same run).
// Figures: process CPU seconds per wall second (getrusage, all threads,
// from just before Start() to after the ring's last commit), readings, and
// sampling lateness vs the deadline (the Scheduler's jitter histogram:
// p50/p99 are power-of-two upper bounds, max is exact).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "agent/daemon/ring_sink.h"
#include "bench/bench.h"
#include "bench/util.h"
#include "common/clock.h"
#include "drivers/scheduler.h"
#include "drivers/simulated.h"

namespace sluice {
namespace bench {
namespace {

class CountingSink final : public ReadingSink {
 public:
  Status Submit(Reading /*reading*/, int64_t /*timeout_us*/) override {
    count_.fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();
  }
  uint64_t count() const { return count_.load(); }

 private:
  std::atomic<uint64_t> count_{0};
};

struct Case {
  const char* name;
  size_t sensors;
  int64_t interval_us;
};

struct Result {
  double seconds = 0;
  double cpu_per_s = 0;
  uint64_t reads = 0, submitted = 0, committed = 0, missed = 0, dropped = 0;
  JitterStats jitter;
};

StatusOr<Result> RunCase(const Case& c, bool use_ring, int64_t duration_us, bool keep) {
  TempDir dir("sluice-bench-sensors");
  if (keep) dir.Keep();
  std::unique_ptr<Ring> ring;
  std::unique_ptr<ReadingSink> sink;
  if (use_ring) {
    auto r =
        Ring::Open(RingOptionsFor(dir.path(), 1000000, Durability::kNormal), SystemClock::Get());
    if (!r.ok()) return r.status();
    ring = std::move(*r);
    sink = std::make_unique<RingSink>(*ring);
  } else {
    sink = std::make_unique<CountingSink>();
  }
  std::vector<std::unique_ptr<SimulatedDriver>> drivers;
  Scheduler::Options so;
  so.seed = 1;
  Scheduler sched(SystemClock::Get(), *sink, so);
  for (size_t i = 0; i < c.sensors; ++i) {
    drivers.push_back(std::make_unique<SimulatedDriver>(SimulatedShape::kSine, 20.0, 90.0,
                                                        600000000, i + 1, 0.0));
    SensorSpec spec;
    spec.name = "sim." + std::to_string(i);
    spec.driver = "simulated";
    spec.interval_us = c.interval_us;
    spec.unit = "C";
    Status st = sched.Add(spec, *drivers.back());
    if (!st.ok()) return st;
  }
  const double cpu0 = SelfCpuSeconds();
  const int64_t t0 = NowUs();
  sched.Start();
  std::this_thread::sleep_for(std::chrono::microseconds(duration_us));
  sched.Stop();
  Result res;
  if (ring) {
    Status f = ring->Flush();
    if (!f.ok()) return f;
    res.committed = ring->Stats().last_seq;
  } else {
    res.committed = static_cast<CountingSink&>(*sink).count();
  }
  res.seconds = static_cast<double>(NowUs() - t0) / 1e6;
  res.cpu_per_s = (SelfCpuSeconds() - cpu0) / res.seconds;
  if (ring) {
    Status s = ring->Stop();
    if (!s.ok()) return s;
  }
  SchedulerStats st = sched.stats();
  res.reads = st.reads;
  res.submitted = st.submitted;
  res.missed = st.missed;
  res.dropped = st.dropped;
  res.jitter = st.jitter;
  if (res.committed != res.submitted) {
    return Internal("submitted " + std::to_string(res.submitted) + " readings but " +
                    std::to_string(res.committed) + " arrived");
  }
  return res;
}

}  // namespace

int RunSensors(const Args& args) {
  const int64_t duration_us = args.quick ? 1000000 : 20000000;
  const Case cases[] = {{"1000_at_1hz", 1000, 1000000}, {"10_at_1khz", 10, 1000}};
  int rc = 0;
  for (const Case& c : cases) {
    for (bool use_ring : {false, true}) {
      const char* sink = use_ring ? "ring" : "counting";
      auto r = RunCase(c, use_ring, duration_us, args.keep);
      if (!r.ok()) {
        std::fprintf(stderr, "sluice-bench sensors %s (%s): %s\n", c.name, sink,
                     r.status().message().c_str());
        rc = 1;
        continue;
      }
      const double expected =
          static_cast<double>(c.sensors) * r->seconds * 1e6 / static_cast<double>(c.interval_us);
      JsonLine("sensors", std::string(c.name) + "_" + sink)
          .Int("sensors", static_cast<int64_t>(c.sensors))
          .Int("interval_us", c.interval_us)
          .Str("sink", sink)
          .Num("seconds", r->seconds)
          .Num("cpu_s_per_s", r->cpu_per_s)
          .Int("reads", static_cast<int64_t>(r->reads))
          .Num("expected_reads", expected)
          .Int("committed", static_cast<int64_t>(r->committed))
          .Int("missed", static_cast<int64_t>(r->missed))
          .Int("dropped", static_cast<int64_t>(r->dropped))
          .Int("jitter_p50_us", r->jitter.p50_us)
          .Int("jitter_p99_us", r->jitter.p99_us)
          .Int("jitter_max_us", r->jitter.max_us)
          .Int("jitter_mean_us", r->jitter.mean_us)
          .Print();
      char figure[64], note[160];
      std::snprintf(figure, sizeof(figure), "%.4f CPU s/s", r->cpu_per_s);
      std::snprintf(
          note, sizeof(note),
          "%s sink; %llu reads; lateness p50 <=%lld us, p99 <=%lld us, max %lld us", sink,
          static_cast<unsigned long long>(r->reads), static_cast<long long>(r->jitter.p50_us),
          static_cast<long long>(r->jitter.p99_us), static_cast<long long>(r->jitter.max_us));
      AddSummary({"sensors",
                  std::to_string(c.sensors) + " sensors every " +
                      (c.interval_us >= 1000000 ? "1 s" : "1 ms"),
                  figure, note});
    }
  }
  return rc;
}

}  // namespace bench
}  // namespace sluice
