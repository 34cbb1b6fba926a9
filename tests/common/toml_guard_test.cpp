// The TOML guard (common/toml_guard.h, common/toml_parse.h): size and depth
// limits checked before toml++ sees the text.
#include <catch2/catch.hpp>

#include <string>

#include "common/toml_guard.h"
#include "common/toml_parse.h"

using namespace sluice;

namespace {

std::string Repeat(const std::string& s, int n, const std::string& sep = "") {
  std::string out;
  for (int i = 0; i < n; ++i) out += (i ? sep : "") + s;
  return out;
}

std::string Prescan(const std::string& text, int max_depth = 64) {
  TomlLimits l;
  l.max_depth = max_depth;
  Status st = PrescanToml(text, "f.toml", l);
  return st.ok() ? "ok" : st.message();
}

}  // namespace

TEST_CASE("a 50,000-segment table header is rejected before toml++ parses it") {
  std::string text = "[" + Repeat("x", 50000, ".") + "]\na = 1\n";
  auto t = ParseToml(text, "deep.toml");
  REQUIRE_FALSE(t.ok());
  // The 65th segment starts at column 2 + 64 * 2.
  CHECK(t.status().message().rfind("deep.toml:1:130: nested too deep", 0) == 0);
}

TEST_CASE("deep dotted keys, arrays and inline tables are rejected") {
  CHECK(Prescan("a = 1\n" + Repeat("k", 70, ".") + " = 1\n").rfind("f.toml:2:", 0) == 0);
  CHECK(Prescan("a = " + Repeat("[", 70) + Repeat("]", 70) + "\n").find("nested too deep") !=
        std::string::npos);
  CHECK(Prescan("a = " + Repeat("{b = ", 70) + "1" + Repeat("}", 70) + "\n")
            .find("nested too deep") != std::string::npos);
  CHECK(Prescan("[[" + Repeat("x", 70, ".") + "]]\n").find("nested too deep") != std::string::npos);
  // Header, key and value nesting add up along one path.
  CHECK(Prescan("[a.b.c]\nd.e = [[{f.g = 1}]]\n", 9) == "f.toml:2:12: nested too deep (more than 9 "
                                                         "levels of table names, dotted keys, "
                                                         "arrays and inline tables)");
  CHECK(Prescan("[a.b.c]\nd.e = [[{f = 1}]]\n", 9) == "ok");
}

TEST_CASE("dots and brackets in strings and comments do not count") {
  std::string dots = Repeat(".", 200);
  std::string brackets = Repeat("[", 200);
  CHECK(Prescan("a = \"" + dots + brackets + "\"\n") == "ok");
  CHECK(Prescan("a = '" + brackets + "'\n") == "ok");
  CHECK(Prescan("a = \"\"\"\n" + brackets + "\n\\\"\"\" \n" + dots + "\"\"\"\n") == "ok");
  CHECK(Prescan("a = '''\n" + brackets + "\n'''\n") == "ok");
  CHECK(Prescan("# " + brackets + dots + "\na = 1 # " + brackets + "\n") == "ok");
  CHECK(Prescan("[\"" + dots + "\"]\n\"" + dots + "\" = 1.5\n") == "ok");
  CHECK(Prescan("a = \"\\\"" + brackets + "\"\n") == "ok");
  // Floats, dates and many sibling tables are flat.
  CHECK(Prescan("a = 1.5\nb = 1979-05-27T07:32:00.999Z\n" + Repeat("[t]\nx = 1\n", 1000)) == "ok");
  // Siblings in arrays and inline tables do not add up.
  CHECK(Prescan("a = [" + Repeat("[1]", 500, ", ") + "]\nb = {" + Repeat("c = 1", 1, "") + "}\n",
                4) == "ok");
  CHECK(Prescan("a = {" + Repeat("b.c = 1", 300, ", ") + "}\n", 4) == "ok");
}

TEST_CASE("an oversized file is rejected with where the limit falls") {
  TomlLimits l;
  l.max_bytes = 10;
  Status st = PrescanToml("a = 1\nb = 22\n", "big.toml", l);
  REQUIRE_FALSE(st.ok());
  CHECK(st.message() == "big.toml:2:5: too long (13 bytes; a TOML file may hold at most 10)");
  CHECK(PrescanToml("a = 1\n", "f.toml", l).ok());
}

TEST_CASE("ParseToml passes toml++'s syntax errors on at FILE:LINE:COL") {
  auto t = ParseToml("a = 1\nb = \n", "s.toml");
  REQUIRE_FALSE(t.ok());
  CHECK(t.status().message().rfind("s.toml:2:", 0) == 0);
  auto ok = ParseToml("[x.y]\nz = [1, {a = 2}]\n", "s.toml");
  REQUIRE(ok.ok());
  CHECK(ok->at_path("x.y.z[1].a").value<int64_t>() == 2);
}
