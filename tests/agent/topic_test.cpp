#include "agent/uplink/topic.h"

#include <catch2/catch.hpp>

namespace sluice {
namespace {

std::string Expand(const std::string& tmpl, const std::string& sensor, const std::string& rule) {
  auto t = TopicTemplate::Parse(tmpl);
  REQUIRE(t.ok());
  std::string out = "junk";
  t->Expand("gw-001", sensor, rule, &out);
  return out;
}

TEST_CASE("topic templates expand {agent}, {sensor}, {rule}", "[topic]") {
  CHECK(Expand("sluice/{agent}/{sensor}", "boiler.temp", "") == "sluice/gw-001/boiler.temp");
  CHECK(Expand("sluice/{agent}/alerts/{rule}", "x", "boiler_overheat") ==
        "sluice/gw-001/alerts/boiler_overheat");
  CHECK(Expand("sluice/{agent}/{sensor}", "batch", "batch") == "sluice/gw-001/batch");
  CHECK(Expand("fixed/topic", "s", "r") == "fixed/topic");
  CHECK(Expand("{sensor}{sensor}-{agent}", "a", "") == "aa-gw-001");
  CHECK(TopicTemplate::Parse("a/{agent}").value().varies() == false);
  CHECK(TopicTemplate::Parse("a/{sensor}").value().varies() == true);
}

TEST_CASE("bad topic templates are refused", "[topic]") {
  CHECK(TopicTemplate::Parse("").status().code() == StatusCode::kInvalidArgument);
  CHECK(!TopicTemplate::Parse("a/{agnet}").ok());
  CHECK(!TopicTemplate::Parse("a/{agent").ok());
  CHECK(!TopicTemplate::Parse("a/agent}").ok());
  CHECK(!TopicTemplate::Parse("a/+/b").ok());
  CHECK(!TopicTemplate::Parse("a/#").ok());
}

}  // namespace
}  // namespace sluice
