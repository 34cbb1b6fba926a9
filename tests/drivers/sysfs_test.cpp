// driver = "sysfs" against files in a temp dir (a fake /sys).
#include "drivers/sysfs.h"

#include <catch2/catch.hpp>

#include "tests/drivers/fake_tree.h"

using namespace sluice;
using namespace sluice::testing;

namespace {

StatusOr<double> SampleOnce(Driver& d) { return d.Sample(0); }

}  // namespace

TEST_CASE("sysfs reads one number; /sys paths resolve below the sysfs root") {
  FakeTree t;
  t.Put("class/thermal/thermal_zone0/temp", "48312\n");
  auto d = MakeDriver("sysfs", "path = \"/sys/class/thermal/thermal_zone0/temp\"", t.root());
  REQUIRE(d.ok());
  CHECK((*d)->polled());
  CHECK((*d)->blocking());
  auto v = SampleOnce(**d);
  REQUIRE(v.ok());
  CHECK(*v == 48312.0);
  // Any other absolute path is read as it is.
  t.Put("elsewhere/value", "  -12.5e1 \n");
  auto e = MakeDriver("sysfs", "path = \"" + t.Path("elsewhere/value") + "\"", "/nonexistent");
  REQUIRE(e.ok());
  CHECK(*SampleOnce(**e) == -125.0);
}

TEST_CASE("sysfs: missing, empty, garbage and non-finite files fail the read") {
  FakeTree t;
  auto d = MakeDriver("sysfs", "path = \"/sys/x/value\"", t.root());
  REQUIRE(d.ok());
  auto v = SampleOnce(**d);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() == "cannot read " + t.Path("x/value") + ": No such file or directory");
  struct Case {
    const char* content;
    const char* error;
  };
  for (const Case& c :
       {Case{"", ": empty"}, Case{" \n", ": empty"}, Case{"abc\n", ": not a number: \"abc\""},
        Case{"12 34\n", ": not a number: \"12 34\""}, Case{"0x10\n", ": not a number: \"0x10\""},
        Case{"1.2.3\n", ": not a number: \"1.2.3\""},
        Case{"nan\n", ": not a finite number: \"nan\""},
        Case{"-inf\n", ": not a finite number: \"-inf\""},
        Case{"1e999\n", ": not a finite number: \"1e999\""},
        Case{"\x01\x02garbage", ": not a number: \"??garbage\""}}) {
    t.Put("x/value", c.content);
    v = SampleOnce(**d);
    INFO("content \"" << c.content << "\"");
    REQUIRE_FALSE(v.ok());
    CHECK(v.status().message() == t.Path("x/value") + c.error);
  }
  t.Put("x/value", std::string(5000, '1'));
  v = SampleOnce(**d);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::EndsWith("more than 4096 bytes"));
  // A good value again: read again.
  t.Put("x/value", "7\n");
  REQUIRE(SampleOnce(**d).ok());
}

TEST_CASE("sysfs param errors name FILE:LINE:COL") {
  auto missing = MakeDriver("sysfs", "scale = 0.001", "/sys");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.status().message(),
             Catch::StartsWith("sluice.toml:1:1: sensor \"s\"") && Catch::Contains("path"));
  auto relative = MakeDriver("sysfs", "path = \"class/x\"", "/sys");
  REQUIRE_FALSE(relative.ok());
  CHECK(relative.status().message() ==
        "sluice.toml:2:19: sensor \"s\": param \"path\" must be an absolute path, got \"class/x\"");
  auto unknown = MakeDriver("sysfs", "path = \"/sys/x\", root = \"/sys\"", "/sys");
  REQUIRE_FALSE(unknown.ok());
  CHECK_THAT(unknown.status().message(), Catch::Contains("unknown param \"root\""));
  auto type = MakeDriver("sysfs", "path = 5", "/sys");
  REQUIRE_FALSE(type.ok());
  CHECK_THAT(type.status().message(), Catch::StartsWith("sluice.toml:2:19:"));
}
