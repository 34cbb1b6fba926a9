#include "bench/rules_bench.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "common/clock.h"
#include "common/event.h"
#include "rules/engine.h"

namespace sluice {
namespace rules {
namespace {

// Benchmark timing: CPU time of this thread, which no Clock models.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

std::string BenchRuleText(int rules, int sensors) {
  static const char* kShapes[] = {
      "avg(S, 30s) > 80",
      "max(S, 1m) - min(S, 1m) > 55",
      "stddev(S, last(100)) > 40",
      "rate(S, 10s) > 500 or rate(S, 10s) < -500",
      "avg(S, tumbling(1m)) > 75 and last(S, 5s) > 70",
      "delta(S, 2m) > 90",
      "count(S, 10s) < 5",
      "absent(S, 1m)",
      "S > 99 and avg(T, 30s) > 50",
      "min(S, last(50)) > 60",
  };
  std::string out;
  char sensor[16], other[16];
  for (int i = 0; i < rules; ++i) {
    std::snprintf(sensor, sizeof sensor, "s%02d", i % sensors);
    std::snprintf(other, sizeof other, "s%02d", (i + 7) % sensors);
    std::string when = kShapes[(i + i / sensors) % 10];
    for (size_t p; (p = when.find('S')) != std::string::npos;) when.replace(p, 1, sensor);
    for (size_t p; (p = when.find('T')) != std::string::npos;) when.replace(p, 1, other);
    out += "[[rule]]\nname = \"r" + std::to_string(i) + "\"\nwhen = \"" + when + "\"\n";
    if (i % 3 == 0) out += "for = \"5s\"\n";
    if (i % 4 == 0) out += "cooldown = \"1m\"\n";
    out += "message = \"{rule} at {value}\"\n\n";
  }
  return out;
}

StatusOr<std::vector<RulesBenchResult>> RunRulesBench(uint64_t readings,
                                                      const std::vector<int>& rule_counts) {
  constexpr int kSensors = 20;
  constexpr int64_t kStepUs = 500;  // 2000 readings/s overall, 100 Hz per sensor
  // A precomputed signal: a slow sine plus noise, so rules fire now and then.
  std::vector<double> signal(8192);
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < signal.size(); ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double noise = static_cast<double>(x % 1000) / 100.0;
    signal[i] = 50 + 45 * std::sin(static_cast<double>(i) * 2 * M_PI / signal.size()) + noise;
  }
  std::vector<RulesBenchResult> results;
  for (int n : rule_counts) {
    auto set = ParseRuleFile(BenchRuleText(n, kSensors), "bench.toml");
    if (!set.ok()) return set.status();
    Engine engine(SystemClock::Get(), EngineOptions());
    std::vector<Alert> alerts;
    engine.Replace(std::move(*set), &alerts);
    std::vector<Reading> r(kSensors);
    for (int s = 0; s < kSensors; ++s) {
      char name[16];
      std::snprintf(name, sizeof name, "s%02d", s);
      r[s].sensor = name;
      r[s].unit = "C";
    }
    // Event time starts in the past so the run never reaches max_future.
    int64_t ts = SystemClock::Get().NowWallUs() - static_cast<int64_t>(readings) * kStepUs;
    uint64_t alert_count = 0;
    const double cpu_start = ThreadCpuSeconds();
    // Benchmark timing measures real time by definition.
    auto start = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < readings; ++i) {
      Reading& rd = r[i % kSensors];
      rd.ts_us = ts;
      rd.value = signal[(i / kSensors + (i % kSensors) * 97) & 8191];
      ts += kStepUs;
      engine.OnReading(rd, &alerts);
      if (alerts.size() > 1024) {
        alert_count += alerts.size();
        alerts.clear();
      }
    }
    auto end = std::chrono::steady_clock::now();
    const double cpu = ThreadCpuSeconds() - cpu_start;
    alert_count += alerts.size();
    RulesBenchResult res;
    res.rules = n;
    res.sensors = kSensors;
    res.windows = engine.stats().windows;
    res.readings = readings;
    res.seconds = std::chrono::duration<double>(end - start).count();
    res.readings_per_s = res.seconds > 0 ? static_cast<double>(readings) / res.seconds : 0;
    res.cpu_seconds = cpu;
    res.readings_per_cpu_s = cpu > 0 ? static_cast<double>(readings) / cpu : 0;
    res.alerts = alert_count;
    results.push_back(res);
  }
  return results;
}

std::string FormatRulesBench(const RulesBenchResult& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "rules=%d sensors=%d windows=%zu readings=%llu %.2fM readings/s "
                "(%.2fM per CPU second) alerts=%llu",
                r.rules, r.sensors, r.windows, static_cast<unsigned long long>(r.readings),
                r.readings_per_s / 1e6, r.readings_per_cpu_s / 1e6,
                static_cast<unsigned long long>(r.alerts));
  return buf;
}

}  // namespace rules
}  // namespace sluice
