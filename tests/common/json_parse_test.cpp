#include "common/json_parse.h"

#include <string>

#include <catch2/catch.hpp>

#include "common/json.h"

using sluice::JsonLimits;
using sluice::JsonValue;
using sluice::ParseJson;

TEST_CASE("json: scalars, arrays, objects") {
  auto v = ParseJson(R"( {"a": 1.5, "b": [true, false, null, "x"], "c": {"d": -2e3}} )");
  REQUIRE(v.ok());
  REQUIRE(v->is_object());
  CHECK(v->Find("a")->AsNumber() == 1.5);
  const JsonValue* b = v->Find("b");
  REQUIRE(b->is_array());
  REQUIRE(b->items().size() == 4);
  CHECK(b->items()[0].AsBool());
  CHECK(b->items()[1].is_bool());
  CHECK_FALSE(b->items()[1].AsBool());
  CHECK(b->items()[2].is_null());
  CHECK(b->items()[3].AsString() == "x");
  CHECK(v->Find("c")->Find("d")->AsNumber() == -2000);
  CHECK(v->Find("zz") == nullptr);
  CHECK(v->members().size() == 3);
  CHECK(v->members()[1].first == "b");
  // Wrong-type access is harmless.
  CHECK(v->Find("a")->AsString().empty());
  CHECK(v->Find("b")->Find("x") == nullptr);
}

TEST_CASE("json: paths") {
  auto v = ParseJson(R"({"sensors":{"temp":21.5,"list":[{"v":1},{"v":2}],"odd key":3}})");
  REQUIRE(v.ok());
  CHECK(v->AtPath("$.sensors.temp")->AsNumber() == 21.5);
  CHECK(v->AtPath("sensors.temp")->AsNumber() == 21.5);
  CHECK(v->AtPath("$.sensors.list[1].v")->AsNumber() == 2);
  CHECK(v->AtPath("$['sensors']['odd key']")->AsNumber() == 3);
  CHECK(v->AtPath("$.sensors[\"temp\"]")->AsNumber() == 21.5);
  CHECK(v->AtPath("$") == &*v);
  CHECK(v->AtPath("$.sensors.list[2]") == nullptr);
  CHECK(v->AtPath("$.sensors.list[x]") == nullptr);
  CHECK(v->AtPath("$.sensors..temp") == nullptr);
  CHECK(v->AtPath("$sensors") == nullptr);
  CHECK(v->AtPath("$.nope.temp") == nullptr);
  CHECK(v->AtPath("$.sensors.temp.deeper") == nullptr);
  CHECK(v->AtPath("$['sensors'") == nullptr);
}

TEST_CASE("json: strings, escapes and UTF-8") {
  auto v = ParseJson(R"(["a\"b\\c\/\b\f\n\r\t", "\u00e9\u20ac\ud83d\ude00", "héllo"])");
  REQUIRE(v.ok());
  CHECK(v->items()[0].AsString() == "a\"b\\c/\b\f\n\r\t");
  CHECK(v->items()[1].AsString() == "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  CHECK(v->items()[2].AsString() == "h\xC3\xA9llo");
  // What our writer produces, we read back.
  std::string text;
  sluice::AppendJsonString("quote\" tab\t ctl\x01 \xE2\x82\xAC", &text);
  auto back = ParseJson(text);
  REQUIRE(back.ok());
  CHECK(back->AsString() == "quote\" tab\t ctl\x01 \xE2\x82\xAC");
}

TEST_CASE("json: numbers") {
  auto v = ParseJson("[0, -0, 12, 3.25, 1e2, 1E-2, -7.5e+1]");
  REQUIRE(v.ok());
  CHECK(v->items()[2].AsNumber() == 12);
  CHECK(v->items()[3].AsNumber() == 3.25);
  CHECK(v->items()[4].AsNumber() == 100);
  CHECK(v->items()[5].AsNumber() == Approx(0.01));
  CHECK(v->items()[6].AsNumber() == -75);
  CHECK(ParseJson("1e400").status().message() == "line 1 col 1: number out of range");
  for (const char* bad : {"01", "1.", ".5", "+1", "-", "1e", "0x10", "NaN", "Infinity"}) {
    INFO(bad);
    CHECK_FALSE(ParseJson(bad).ok());
  }
}

TEST_CASE("json: errors name line and column") {
  CHECK(ParseJson("{\"a\":1,\n  \"b\" 2}").status().message() == "line 2 col 7: expected ':'");
  CHECK(ParseJson("").status().message() == "line 1 col 1: unexpected end of input");
  CHECK(ParseJson("[1,2").status().message() == "line 1 col 5: expected ',' or ']'");
  CHECK(ParseJson("{\"a\":1} x").status().message() ==
        "line 1 col 9: unexpected text after the JSON value");
  CHECK(ParseJson("\"abc").status().message() == "line 1 col 5: unterminated string");
  CHECK(ParseJson("tru").status().message() == "line 1 col 1: invalid literal");
  CHECK(ParseJson("[1,]").status().message() == "line 1 col 4: unexpected character ']'");
  CHECK(ParseJson("{1:2}").status().message() == "line 1 col 2: expected a string key");
  CHECK(ParseJson("\"a\x01\"").status().message() == "line 1 col 3: control character in string");
  CHECK(ParseJson("\"\\x\"").status().message() == "line 1 col 3: invalid escape in string");
  CHECK(ParseJson("\"\xC3\"").status().message() == "line 1 col 2: invalid UTF-8 in string");
  CHECK(ParseJson("\"\xED\xA0\x80\"").status().message() == "line 1 col 2: invalid UTF-8 in string");
  CHECK(ParseJson("\"\\ud800\"").status().message() ==
        "line 1 col 8: unpaired surrogate in \\u escape");
  CHECK(ParseJson("\"\\u12\"").status().message() == "line 1 col 4: truncated \\u escape");
  CHECK(ParseJson("\"\\u12g4\"").status().message() == "line 1 col 4: invalid \\u escape");
  CHECK(ParseJson("\x01").status().message() == "line 1 col 1: unexpected character '\\x01'");
}

TEST_CASE("json: limits bound hostile input") {
  std::string deep(100000, '[');
  auto d = ParseJson(deep);
  REQUIRE_FALSE(d.ok());
  CHECK(d.status().message() == "line 1 col 65: nested deeper than 64");
  std::string ok_deep = std::string(64, '[') + std::string(64, ']');
  CHECK(ParseJson(ok_deep).ok());

  JsonLimits small;
  small.max_bytes = 16;
  CHECK(ParseJson("[1,2,3,4,5,6,7,8,9]", small).status().message() ==
        "JSON text of 19 bytes exceeds the limit of 16");
  JsonLimits few;
  few.max_elements = 4;
  CHECK(ParseJson("[1,2,3]", few).ok());
  CHECK(ParseJson("[1,2,3,4]", few).status().message() == "line 1 col 8: more than 4 values");
}

TEST_CASE("json: duplicate keys keep order, Find returns the last") {
  auto v = ParseJson(R"({"k":1,"k":2})");
  REQUIRE(v.ok());
  CHECK(v->members().size() == 2);
  CHECK(v->Find("k")->AsNumber() == 2);
}
