// The rules benchmark runs and reports sane figures (no timing assertions:
// figures are for sluice-bench and rules_bench to print).
#include <catch2/catch.hpp>

#include "bench/rules_bench.h"

using namespace sluice::rules;

TEST_CASE("rules bench runs 1, 10 and 100 rules") {
  auto results = RunRulesBench(20000);
  REQUIRE(results.ok());
  REQUIRE(results->size() == 3);
  CHECK((*results)[0].rules == 1);
  CHECK((*results)[2].rules == 100);
  CHECK((*results)[2].windows > 50);
  for (const auto& r : *results) {
    CHECK(r.readings == 20000);
    CHECK(r.readings_per_s > 0);
    CHECK_FALSE(FormatRulesBench(r).empty());
  }
}
