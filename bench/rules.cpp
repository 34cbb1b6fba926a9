// sluice-bench rules: readings/s through the rules engine (see
// bench/rules_bench.h) with 1, 10 and 100 rules over 20 sensors, on one thread.
#include <cstdio>

#include "bench/bench.h"
#include "bench/util.h"
#include "bench/rules_bench.h"

namespace sluice {
namespace bench {

int RunRules(const Args& args) {
  uint64_t n = args.events ? args.events : (args.quick ? 20000 : 4000000);
  auto results = rules::RunRulesBench(n);
  if (!results.ok()) {
    std::fprintf(stderr, "sluice-bench rules: %s\n", results.status().message().c_str());
    return 1;
  }
  for (const rules::RulesBenchResult& r : *results) {
    JsonLine("rules", "rules_" + std::to_string(r.rules))
        .Int("rules", r.rules)
        .Int("sensors", r.sensors)
        .Int("windows", static_cast<int64_t>(r.windows))
        .Int("readings", static_cast<int64_t>(r.readings))
        .Num("seconds", r.seconds)
        .Num("readings_per_s", r.readings_per_s)
        .Num("cpu_seconds", r.cpu_seconds)
        .Num("readings_per_cpu_s", r.readings_per_cpu_s)
        .Int("alerts", static_cast<int64_t>(r.alerts))
        .Print();
    AddSummary({"rules", std::to_string(r.rules) + " rules, " + std::to_string(r.sensors) +
                             " sensors, " + std::to_string(r.windows) + " windows",
                FormatRate(r.readings_per_s) + " readings",
                FormatRate(r.readings_per_cpu_s) + " readings per CPU second, one thread"});
  }
  return 0;
}

}  // namespace bench
}  // namespace sluice
