// The sluice command framework (agent/cli/cli.h) and the history output formats
// (agent/cli/cli_format.h): option parsing, --since/--until times, CSV quoting,
// JSON lines.
#include "agent/cli/cli.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "agent/cli/cli_format.h"
#include "buffer/codec.h"
#include "common/json_parse.h"
#include "common/units.h"

namespace sluice {
namespace cli {
namespace {

const CommandSpec kSpec = {"tail",
                           "[-n N] [--sensor GLOB] [--follow]",
                           "summary",
                           "help",
                           {{"-n", "--lines", true, false},
                            {"--sensor", nullptr, true, true},
                            {"--follow", "-f", false, false}},
                           0,
                           1,
                           nullptr};

int Parse(std::vector<std::string> words, Globals* g, Parsed* p) {
  return ParseArgs(kSpec, words, g, p);
}

TEST_CASE("ParseArgs: options, aliases, --opt=value, globals anywhere, --") {
  Globals g;
  Parsed p;
  REQUIRE(Parse({"--lines=5", "--sensor", "a.*", "--sensor=b", "-f", "--data-dir", "/d", "--json",
                 "--", "-x"},
                &g, &p) == -1);
  CHECK(p.Get("-n") == "5");
  CHECK(p.All("--sensor") == std::vector<std::string>{"a.*", "b"});
  CHECK(p.Has("--follow"));
  CHECK(g.data_dir == "/d");
  CHECK(g.json);
  CHECK(!g.config_given);
  CHECK(p.positional == std::vector<std::string>{"-x"});
  Parsed q;
  REQUIRE(Parse({"-n", "1", "-n", "2", "--config=/c.toml"}, &g, &q) == -1);
  CHECK(q.Get("-n") == "2");  // not repeatable: the last wins
  CHECK(g.config_path == "/c.toml");
  CHECK(g.config_given);
}

TEST_CASE("ParseArgs: usage errors exit 2, --help exits 0") {
  for (const std::vector<std::string>& bad : std::vector<std::vector<std::string>>{
           {"--bogus"}, {"-n"}, {"--follow=1"}, {"a", "b"}, {"--json=1"}, {"--config"}}) {
    Globals g;
    Parsed p;
    CHECK(Parse(bad, &g, &p) == 2);
  }
  Globals g;
  Parsed p;
  CHECK(Parse({"--bogus", "--help"}, &g, &p) == 2);  // left to right
  Parsed h;
  CHECK(Parse({"--help", "--bogus"}, &g, &h) == 0);
}

TEST_CASE("ParseTimeArg: durations back from now and RFC 3339 times") {
  const int64_t now = 1795628722000000;
  CHECK(*ParseTimeArg("2h", now) == now - 7200000000);
  CHECK(*ParseTimeArg("30m", now) == now - 1800000000);
  CHECK(*ParseTimeArg("7d", now) == now - 7 * 86400000000);
  const int64_t t = 1795622400000000;  // 2026-11-25T16:00:00Z
  REQUIRE(FormatUtc(t, false) == "2026-11-25T16:00:00Z");
  CHECK(*ParseTimeArg("2026-11-25T16:00:00Z", now) == t);
  CHECK(*ParseTimeArg("2026-11-25t16:00:00z", now) == t);
  CHECK(*ParseTimeArg("2026-11-25 16:00:00Z", now) == t);
  CHECK(*ParseTimeArg("2026-11-25T16:00:00.25Z", now) == t + 250000);
  CHECK(*ParseTimeArg("2026-11-25T16:00:00.123456789Z", now) == t + 123456);
  CHECK(*ParseTimeArg("2026-11-25T17:30:00+01:30", now) == t);
  CHECK(*ParseTimeArg("2026-11-25T14:00:00-02:00", now) == t);
  CHECK(*ParseTimeArg("2024-02-29T00:00:00Z", now) == 1709164800000000);
  for (const char* bad : {"", "2x", "-5m", "2026-11-25T16:00:00", "2026-11-25T16:00Z",
                          "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z",
                          "2026-11-25T24:00:00Z", "2026-11-25T16:00:00.Z", "2026-11-25T16:00:00Z ",
                          "2026-11-25T16:00:00+1:00", "yesterday"}) {
    INFO(bad);
    CHECK(!ParseTimeArg(bad, now).ok());
  }
}

TEST_CASE("MatchesAny: fnmatch globs, any of several") {
  CHECK(MatchesAny({}, "x"));
  CHECK(MatchesAny({"boiler.*"}, "boiler.temp"));
  CHECK(!MatchesAny({"boiler.*"}, "pump.rpm"));
  CHECK(MatchesAny({"boiler.*", "pump.rp?"}, "pump.rpm"));
  CHECK(MatchesAny({"s[0-2]"}, "s1"));
  CHECK(!MatchesAny({"s[0-2]"}, "s3"));
  CHECK(!MatchesAny({"Boiler.*"}, "boiler.temp"));
}

StoredEvent Stored(uint64_t seq, const std::string& body, int kind, const std::string& sensor) {
  StoredEvent e;
  e.seq = seq;
  e.body = body;
  SetEncodedSeq(&e.body, seq);
  e.kind = kind;
  e.sensor = sensor;
  return e;
}

TEST_CASE("CsvRow quotes commas, quotes and newlines; JsonLine is the uplink document") {
  Alert a;
  a.rule = "hot";
  a.state = "firing";
  a.severity = "critical";
  a.ts_us = 1795622400250000;
  a.value = 86.5;
  a.message = "said \"hi\", then\nleft";
  a.labels = {{"site", "plant,1"}};
  StoredEvent e = Stored(43, EncodeAlert(a), 1, "hot");
  CHECK(CsvRow(e) ==
        "43,2026-11-25T16:00:00.250Z,1795622400250000,alert,,86.5,,,hot,firing,critical,"
        "\"said \"\"hi\"\", then\nleft\",\"site=plant,1\"\n");
  std::string line = JsonLine("gw-1", e);
  REQUIRE(!line.empty());
  CHECK(line.back() == '\n');
  auto v = ParseJson(line);
  REQUIRE(v.ok());
  CHECK(v->Find("agent")->AsString() == "gw-1");
  CHECK(v->Find("message")->AsString() == a.message);
  CHECK(v->AtPath("$.labels.site")->AsString() == "plant,1");

  Reading r;
  r.sensor = "boiler.temp";
  r.ts_us = 1795622400000000;
  r.value = 21.5;
  r.unit = "C";
  r.quality = Quality::kUncertain;
  StoredEvent re = Stored(42, EncodeReading(r), 0, "boiler.temp");
  CHECK(CsvRow(re) ==
        "42,2026-11-25T16:00:00.000Z,1795622400000000,reading,boiler.temp,21.5,C,uncertain,"
        ",,,,\n");
  // No config read: no agent field, the rest unchanged.
  CHECK(JsonLine("", re) ==
        "{\"seq\":42,\"sensor\":\"boiler.temp\",\"ts_us\":1795622400000000,\"value\":21.5,"
        "\"unit\":\"C\",\"quality\":\"uncertain\"}\n");
  CHECK(HumanLine(re) ==
        "2026-11-25T16:00:00.000Z  seq 42       boiler.temp                      21.5 C  "
        "(uncertain)\n");
  // An alert whose rule's subject had no value.
  a.value = std::nan("");
  a.message = "dz n/a";
  a.labels.clear();
  StoredEvent none = Stored(44, EncodeAlert(a), 1, "hot");
  CHECK(HumanLine(none) ==
        "2026-11-25T16:00:00.250Z  seq 44       ALERT hot                firing   critical value n/a"
        "  dz n/a\n");
  CHECK(JsonLine("", none).find("\"value\":null,\"message\":\"dz n/a\"") != std::string::npos);
  CHECK(CsvRow(none).find(",alert,,,,,hot,") != std::string::npos);
  StoredEvent broken = re;
  broken.body = "garbage";
  CHECK(CsvRow(broken).empty());
  CHECK(JsonLine("gw", broken).empty());
}

}  // namespace
}  // namespace cli
}  // namespace sluice
