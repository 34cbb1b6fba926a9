#include <catch2/catch.hpp>

#include "drivers/line_protocol.h"

using namespace sluice;

TEST_CASE("good lines parse") {
  ParsedLine p;
  REQUIRE(ParseLine("boiler.temp 21.5 1764075600123456", &p).ok());
  CHECK(p.sensor == "boiler.temp");
  CHECK(p.value == 21.5);
  CHECK(p.has_ts);
  CHECK(p.ts_us == 1764075600123456);

  REQUIRE(ParseLine("a -3e2", &p).ok());
  CHECK(p.sensor == "a");
  CHECK(p.value == -300);
  CHECK_FALSE(p.has_ts);

  REQUIRE(ParseLine("  x_Y-9.z\t 7 \t0\r", &p).ok());
  CHECK(p.sensor == "x_Y-9.z");
  CHECK(p.value == 7);
  CHECK(p.ts_us == 0);

  REQUIRE(ParseLine(std::string(128, 'n') + " 1", &p).ok());
  REQUIRE(ParseLine("s +0.5", &p).ok());
  CHECK(p.value == 0.5);
}

TEST_CASE("every kind of bad line is rejected with a reason") {
  struct Case {
    std::string line;
    const char* why;
  };
  std::vector<Case> cases = {
      {"temp", "missing value"},
      {"temp 1 2 3", "extra fields"},
      {"te mp 1 2 3", "extra fields"},
      {"bad/name 1", "bad sensor name"},
      {"bad\xc3\xa9 1", "bad sensor name"},
      {std::string(129, 'n') + " 1", "bad sensor name"},
      {"t 1.5x", "bad value"},
      {"t abc", "bad value"},
      {"t nan", "not finite"},
      {"t -inf", "not finite"},
      {"t 1e999", "not finite"},
      {"t 1 12.5", "bad timestamp"},
      {"t 1 -5", "bad timestamp"},
      {"t 1 99999999999999999999", "too large"},
      {"t 1 1a", "bad timestamp"},
      {"t " + std::string(kMaxLineBytes, '1'), "longer than"},
  };
  for (const Case& c : cases) {
    ParsedLine p;
    Status st = ParseLine(c.line, &p);
    INFO(c.line.substr(0, 60));
    CHECK(st.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(st.message(), Catch::Contains(c.why));
  }
}

TEST_CASE("sensor names follow the contract") {
  CHECK(ValidSensorName("boiler.temp"));
  CHECK(ValidSensorName("A-z_0.9"));
  CHECK_FALSE(ValidSensorName(""));
  CHECK_FALSE(ValidSensorName("a b"));
  CHECK_FALSE(ValidSensorName("a:b"));
  CHECK_FALSE(ValidSensorName(std::string(129, 'a')));
}

TEST_CASE("datagrams split into lines; a final line needs no newline") {
  auto lines = SplitDatagram("a 1\nb 2\n\n  \nc 3");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0] == "a 1");
  CHECK(lines[1] == "b 2");
  CHECK(lines[2] == "c 3");
  CHECK(SplitDatagram("a 1\n").size() == 1);
  CHECK(SplitDatagram("").empty());
  CHECK(BlankLine(" \t\r"));
  CHECK_FALSE(BlankLine("x"));
}
