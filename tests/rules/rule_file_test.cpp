#include <catch2/catch.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <string>

#include "rules/rule.h"

using namespace sluice;
using namespace sluice::rules;

namespace {

// The first error line of loading `text` as FILE.
std::string Error(const std::string& text, const std::string& file = "r.toml") {
  auto set = ParseRuleFile(text, file);
  if (set.ok()) return "ok";
  std::string m = set.status().message();
  return m.substr(0, m.find('\n'));
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sluice-rules-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { (void)!system(("rm -rf '" + path_ + "'").c_str()); }
  std::string Write(const std::string& name, const std::string& text) {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

TEST_CASE("the contract's example file loads") {
  const char* text = R"toml([[rule]]
name = "boiler_overheat"                   # required, unique
when = "avg(boiler.temp, 30s) > 85"        # required
clear = "avg(boiler.temp, 30s) < 80"       # optional hysteresis; default: not `when`
for = "10s"                                # must hold this long before firing
cooldown = "5m"                            # minimum gap between two firings
severity = "critical"                      # info | warning | critical
message = "Boiler at {value} C"
labels = { site = "plant-1" }

[[rule]]
name = "pump_stalled"
when = "max(pump.rpm, 1m) < 10 and avg(pump.current, 1m) > 2.0"

[[rule]]
name = "boiler_silent"
when = "absent(boiler.temp, 2m)"           # no reading for 2 minutes
)toml";
  auto set = ParseRuleFile(text, "rules.toml");
  INFO(set.status().ToString());
  REQUIRE(set.ok());
  REQUIRE(set->rules.size() == 3);
  const RuleDef& r = set->rules[0];
  CHECK(r.name == "boiler_overheat");
  CHECK(r.file == "rules.toml");
  CHECK(r.line == 1);
  CHECK(r.has_clear);
  CHECK(r.for_us == 10000000);
  CHECK(r.cooldown_us == 300000000);
  CHECK(r.severity == "critical");
  CHECK(RenderMessage(r, "firing", 86.2) == "Boiler at 86.2 C");
  CHECK(r.labels == std::vector<std::pair<std::string, std::string>>{{"site", "plant-1"}});
  const RuleDef& p = set->rules[1];
  CHECK(p.severity == "warning");
  CHECK_FALSE(p.has_clear);
  CHECK(p.for_us == 0);
  CHECK(RenderMessage(p, "resolved", 3) == "pump_stalled resolved: 3");
  CHECK(set->rules[2].when.uses_absent);
  CHECK(set->files == std::vector<std::string>{"rules.toml"});
}

TEST_CASE("every file error names FILE:LINE:COL") {
  struct {
    std::string text;
    const char* error;
  } cases[] = {
      // TOML syntax.
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\n", "r.toml:3:"},
      // Unknown keys: at the key.
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\n  whne = \"x\"\n",
       "r.toml:4:3: rule \"a\": unknown key \"whne\""},
      {"[rules]\nx = 1\n", "r.toml:1:2: unknown key \"rules\" (a rule file holds [[rule]] tables)"},
      {"rule = 5\n", "r.toml:1:8: \"rule\" must be written as [[rule]] tables"},
      // Wrong types: at the value.
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\nfor = 10\n",
       "r.toml:4:7: rule \"a\": \"for\" must be a string, not an integer"},
      {"[[rule]]\nname = 5\nwhen = \"x > 1\"\n",
       "r.toml:2:8: rule #1: \"name\" must be a string, not an integer"},
      {"[[rule]]\nname = \"a\"\nwhen = true\n",
       "r.toml:3:8: rule \"a\": \"when\" must be a string, not a boolean"},
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\nlabels = \"x\"\n",
       "r.toml:4:10: rule \"a\": \"labels\" must be a table of strings, not a string"},
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\nlabels = { n = 1 }\n",
       "r.toml:4:16: rule \"a\": label \"n\" must be a string, not an integer"},
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\nlabels = { value = \"v\" }\n",
       "r.toml:4:12: rule \"a\": label name \"value\" is reserved"},
      // Bad values.
      {"[[rule]]\nname = \"a b\"\nwhen = \"x > 1\"\n",
       "r.toml:2:8: rule #1: name \"a b\" must be 1-128 of [A-Za-z0-9._-]"},
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\ncooldown = \"5 min\"\n",
       "r.toml:4:12: rule \"a\": \"cooldown\": bad duration \"5 min\""},
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\nseverity = \"fatal\"\n",
       "r.toml:4:12: rule \"a\": severity \"fatal\" must be info, warning or critical"},
      // Missing keys: at the [[rule]] table.
      {"\n[[rule]]\nwhen = \"x > 1\"\n", "r.toml:2:1: rule #1: missing required key \"name\""},
      {"[[rule]]\nname = \"a\"\n", "r.toml:1:1: rule \"a\": missing required key \"when\""},
      // Expression errors: inside the expression.
      {"[[rule]]\nname = \"a\"\nwhen = \"avg(x, 30s) > \"\n",
       "r.toml:3:21: rule \"a\": \"when\": \">\" is missing its right-hand operand"},
      {"[[rule]]\nname = \"a\"\nwhen = \"foo(x, 30s) > 1\"\n",
       "r.toml:3:9: rule \"a\": \"when\": unknown function \"foo\""},
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\nclear = \"avg(x, 3O) < 1\"\n",
       "r.toml:4:17: rule \"a\": \"clear\": bad window"},
      {"[[rule]]\nname = \"a\"\nwhen = \"(x > 1\"\n", "r.toml:3:9: rule \"a\": \"when\": unclosed \"(\""},
      // Escapes map to their backslash; literal and multi-line strings map exactly.
      {"[[rule]]\nname = \"a\"\nwhen = \"x \\u003e\\u003e 1\"\n",
       "r.toml:3:11: rule \"a\": \"when\": \">\" is missing its right-hand operand"},
      {"[[rule]]\nname = \"a\"\nwhen = \"\\t\\\"x\\\" > 1\"\n",
       "r.toml:3:11: rule \"a\": \"when\": unexpected character \"\"\""},
      {"[[rule]]\nname = \"a\"\nwhen = 'x > 1 $'\n",
       "r.toml:3:15: rule \"a\": \"when\": unexpected character \"$\""},
      {"[[rule]]\nname = \"a\"\nwhen = \"\"\"\n  avg(x, 30s) >\n    1 +\n\"\"\"\n",
       "r.toml:5:7: rule \"a\": \"when\": \"+\" is missing its right-hand operand"},
      {"[[rule]]\nname = \"a\"\nwhen = '''\nx > 1\n  and '''\n",
       "r.toml:5:3: rule \"a\": \"when\": \"and\" is missing its right-hand operand"},
      {"[[rule]]\nname = \"a\"\nwhen = \"\"\"x > \\\n     1 or\"\"\"\n",
       "r.toml:4:8: rule \"a\": \"when\": \"or\" is missing its right-hand operand"},
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1 and é\"\n",
       "r.toml:3:19: rule \"a\": \"when\": unexpected character byte 0xc3"},
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\nmessage = \"é°C {bad}\"\n",
       "r.toml:4:16: rule \"a\": \"message\": unknown placeholder {bad}"},
      // Message templates.
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\nmessage = \"at {vlaue}\"\n",
       "r.toml:4:15: rule \"a\": \"message\": unknown placeholder {vlaue}"},
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\nmessage = \"at {value\"\n",
       "r.toml:4:15: rule \"a\": \"message\": unclosed \"{\""},
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\nmessage = \"a } b\"\n",
       "r.toml:4:14: rule \"a\": \"message\": unmatched \"}\""},
      // Duplicates: at the second rule, naming the first.
      {"[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\n\n[[rule]]\nname = \"a\"\nwhen = \"x > 2\"\n",
       "r.toml:5:1: duplicate rule name \"a\" (first defined at r.toml:1:1)"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    std::string got = Error(c.text);
    INFO(got);
    CHECK(got.rfind(c.error, 0) == 0);
  }
}

TEST_CASE("every error of every rule is reported, one per line") {
  auto set = ParseRuleFile(
      "[[rule]]\nname = \"a\"\nwhen = \"x >\"\nfor = \"1x\"\n[[rule]]\nnope = 1\n", "r.toml");
  REQUIRE_FALSE(set.ok());
  std::string m = set.status().message();
  CHECK(m.find("r.toml:3:") != std::string::npos);
  CHECK(m.find("r.toml:4:7:") != std::string::npos);
  CHECK(m.find("r.toml:5:1: rule #2: missing required key \"name\"") != std::string::npos);
  CHECK(m.find("r.toml:6:1: rule #2: unknown key \"nope\"") != std::string::npos);
}

TEST_CASE("globs: sorted, each file once, no match is a warning; duplicates across files") {
  TempDir dir;
  dir.Write("b.toml", "[[rule]]\nname = \"b\"\nwhen = \"x > 1\"\n");
  dir.Write("a.toml", "[[rule]]\nname = \"a\"\nwhen = \"x > 1\"\n");
  std::vector<std::string> warnings;
  auto set = LoadRuleGlobs({dir.path() + "/*.toml", dir.path() + "/a.toml",
                            dir.path() + "/none/*.toml"},
                           &warnings);
  INFO(set.status().ToString());
  REQUIRE(set.ok());
  REQUIRE(set->rules.size() == 2);
  CHECK(set->rules[0].name == "a");
  CHECK(set->rules[1].name == "b");
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("matches no file") != std::string::npos);

  std::string c = dir.Write("c.toml", "\n\n[[rule]]\nname = \"a\"\nwhen = \"x > 3\"\n");
  set = LoadRuleGlobs({dir.path() + "/*.toml"}, nullptr);
  REQUIRE_FALSE(set.ok());
  CHECK(set.status().message() == c + ":3:1: duplicate rule name \"a\" (first defined at " +
                                      dir.path() + "/a.toml:1:1)");

  auto missing = LoadRuleFiles({dir.path() + "/missing.toml"});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().rfind(dir.path() + "/missing.toml: cannot open", 0) == 0);
  auto empty = LoadRuleGlobs({}, nullptr);
  REQUIRE(empty.ok());
  CHECK(empty->rules.empty());
}

TEST_CASE("definition hash: whitespace-insensitive, changes with what decides firing") {
  auto h = [](const std::string& extra, const std::string& when = "x > 1") {
    auto set = ParseRuleFile("[[rule]]\nname = \"a\"\nwhen = \"" + when + "\"\n" + extra, "r.toml");
    REQUIRE(set.ok());
    return set->rules[0].hash;
  };
  CHECK(h("") == h("", "x>1"));
  CHECK(h("") == h("message = \"m\"\nseverity = \"info\"\n"));
  CHECK(h("") != h("for = \"1s\"\n"));
  CHECK(h("") != h("cooldown = \"1s\"\n"));
  CHECK(h("") != h("clear = \"x < 0\"\n"));
  CHECK(h("") != h("", "x > 2"));
}

TEST_CASE("values in messages") {
  CHECK(FormatValue(86.2) == "86.2");
  CHECK(FormatValue(1.0 / 3) == "0.333333");
  CHECK(FormatValue(-5) == "-5");
  CHECK(FormatValue(999999) == "999999");
  // From 1e6 up: the shortest form that reads back exactly, as in JSON.
  CHECK(FormatValue(1764075600.25) == "1764075600.25");
  CHECK(FormatValue(1e6) == "1e+06");  // as JSON prints it
  CHECK(FormatValue(1234567.25) == "1234567.25");
  CHECK(FormatValue(1e100) == "1e+100");
  CHECK(FormatValue(-1.7976931348623157e308) == "-1.7976931348623157e+308");
  CHECK(FormatValue(std::nan("")) == "n/a");
  CHECK(FormatValue(HUGE_VAL) == "n/a");
  auto set = ParseRuleFile("[[rule]]\nname = \"r\"\nwhen = \"x > 1\"\nmessage = \"at {value} C\"\n",
                          "r.toml");
  REQUIRE(set.ok());
  CHECK(RenderMessage(set->rules[0], "firing", -1e100) == "at -1e+100 C");
  CHECK(RenderMessage(set->rules[0], "firing", std::nan("")) == "at n/a C");
}
