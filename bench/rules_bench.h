// The `rules` benchmark for sluice-bench: readings/s through the engine
// with 1, 10 and 100 rules over 20 sensors and mixed windows (sliding,
// tumbling, count; avg, min, max, rate, stddev, delta, absent), on the
// calling thread only. Uses SystemClock (one wall-clock read per reading,
// as in the daemon).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice {
namespace rules {

struct RulesBenchResult {
  int rules = 0;
  int sensors = 0;
  size_t windows = 0;        // distinct (sensor, window) pairs
  uint64_t readings = 0;
  double seconds = 0;          // wall time
  double readings_per_s = 0;   // per wall second
  double cpu_seconds = 0;      // this thread's CPU time (robust on a busy box)
  double readings_per_cpu_s = 0;
  uint64_t alerts = 0;
};

// The rule file the benchmark loads for `rules` rules over `sensors`
// sensors named s00, s01, ...
std::string BenchRuleText(int rules, int sensors);

// Runs `readings` readings (round-robin over 20 sensors, 100 Hz each in
// event time) through a fresh engine for each rule count.
StatusOr<std::vector<RulesBenchResult>> RunRulesBench(
    uint64_t readings, const std::vector<int>& rule_counts = {1, 10, 100});

// "rules=100 sensors=20 windows=96 readings=4000000 3.21M readings/s
//  (3.30M per CPU second) alerts=.."
std::string FormatRulesBench(const RulesBenchResult& r);

}  // namespace rules
}  // namespace sluice
