// rules_bench [READINGS]: the rules benchmark on one core (see
// bench/rules_bench.h); sluice-bench calls the same function.
#include <cstdio>
#include <cstdlib>

#include "bench/rules_bench.h"

int main(int argc, char** argv) {
  uint64_t readings = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 4000000;
  auto results = sluice::rules::RunRulesBench(readings);
  if (!results.ok()) {
    std::fprintf(stderr, "rules_bench: %s\n", results.status().ToString().c_str());
    return 1;
  }
  for (const auto& r : *results) std::printf("%s\n", sluice::rules::FormatRulesBench(r).c_str());
  return 0;
}
