// driver = "hwmon" against a fake /sys/class/hwmon, including renumbering.
#include "drivers/hwmon.h"

#include <catch2/catch.hpp>

#include "tests/drivers/fake_tree.h"

using namespace sluice;
using namespace sluice::testing;

namespace {

// hwmon0: acpitz; hwmon1: coretemp with two labelled inputs.
void Board(FakeTree& t) {
  t.Put("class/hwmon/hwmon0/name", "acpitz\n");
  t.Put("class/hwmon/hwmon0/temp1_input", "27800\n");
  t.Put("class/hwmon/hwmon1/name", "coretemp\n");
  t.Put("class/hwmon/hwmon1/temp1_label", "Package id 0\n");
  t.Put("class/hwmon/hwmon1/temp1_input", "45000\n");
  t.Put("class/hwmon/hwmon1/temp2_label", "Core 0\n");
  t.Put("class/hwmon/hwmon1/temp2_input", "51000\n");
}

std::string Location(Driver& d) { return static_cast<HwmonDriver&>(d).location(); }

}  // namespace

TEST_CASE("hwmon finds the chip by name and the input by file or label") {
  FakeTree t;
  Board(t);
  auto by_input = MakeDriver("hwmon", "chip = \"coretemp\", input = \"temp1_input\"", t.root());
  REQUIRE(by_input.ok());
  CHECK((*by_input)->blocking());
  CHECK(SampleValue(**by_input) == 45.0);  // millidegrees -> C
  auto by_label = MakeDriver("hwmon", "chip = \"coretemp\", label = \"Core 0\"", t.root());
  REQUIRE(by_label.ok());
  CHECK(SampleValue(**by_label) == 51.0);
  CHECK(Location(**by_label) == t.Path("class/hwmon/hwmon1/temp2_input"));
  // An explicit root instead of sysfs_root + /class/hwmon.
  auto rooted = MakeDriver(
      "hwmon",
      "chip = \"acpitz\", input = \"temp1_input\", root = \"" + t.Path("class/hwmon") + "\"",
      "/nonexistent");
  REQUIRE(rooted.ok());
  CHECK(SampleValue(**rooted) == 27.8);
}

TEST_CASE("hwmon units follow the hwmon ABI") {
  FakeTree t;
  t.Put("class/hwmon/hwmon4/name", "ina219\n");
  t.Put("class/hwmon/hwmon4/in0_input", "1200\n");
  t.Put("class/hwmon/hwmon4/curr1_input", "-250\n");
  t.Put("class/hwmon/hwmon4/power1_input", "5000000\n");
  t.Put("class/hwmon/hwmon4/fan1_input", "1200\n");
  // Older drivers keep their attributes in device/.
  t.Put("class/hwmon/hwmon4/device/humidity1_input", "45500\n");
  struct Case {
    const char* input;
    double value;
  };
  for (const Case& c :
       {Case{"in0_input", 1.2}, Case{"curr1_input", -0.25}, Case{"power1_input", 5.0},
        Case{"fan1_input", 1200.0}, Case{"humidity1_input", 45.5}}) {
    auto d = MakeDriver("hwmon", "chip = \"ina219\", input = \"" + std::string(c.input) + "\"",
                        t.root());
    REQUIRE(d.ok());
    INFO(c.input);
    CHECK(SampleValue(**d) == Approx(c.value));
  }
}

TEST_CASE("hwmon follows its chip when hwmonN is renumbered between reads") {
  FakeTree t;
  Board(t);
  auto d = MakeDriver("hwmon", "chip = \"coretemp\", label = \"Package id 0\"", t.root());
  REQUIRE(d.ok());
  CHECK(SampleValue(**d) == 45.0);
  // "Reboot": coretemp is now hwmon3, and another chip took hwmon1 -- with
  // a temp1_input of its own that must not be read for coretemp.
  t.Rename("class/hwmon/hwmon1", "class/hwmon/hwmon3");
  t.Put("class/hwmon/hwmon3/temp1_input", "46000\n");
  t.Put("class/hwmon/hwmon1/name", "nvme\n");
  t.Put("class/hwmon/hwmon1/temp1_input", "30000\n");
  t.Put("class/hwmon/hwmon1/temp1_label", "Package id 0\n");
  CHECK(SampleValue(**d) == 46.0);  // found again within the same read
  CHECK(Location(**d) == t.Path("class/hwmon/hwmon3/temp1_input"));
  // Renumbered to a directory that is simply gone, then back.
  t.Rename("class/hwmon/hwmon3", "class/hwmon/hwmon12");
  CHECK(SampleValue(**d) == 46.0);
  CHECK(Location(**d) == t.Path("class/hwmon/hwmon12/temp1_input"));
}

TEST_CASE("hwmon: absent chip, absent input and bad values fail the read, then recover") {
  FakeTree t;
  t.Put("class/hwmon/hwmon0/name", "acpitz\n");
  auto d = MakeDriver("hwmon", "chip = \"coretemp\", input = \"temp1_input\"", t.root());
  REQUIRE(d.ok());  // an absent chip is not a config error: it may appear later
  auto v = (*d)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() == "no hwmon chip named \"coretemp\" under " + t.Path("class/hwmon"));
  Board(t);
  CHECK(SampleValue(**d) == 45.0);
  t.Put("class/hwmon/hwmon1/temp1_input", "garbage\n");
  v = (*d)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() ==
        t.Path("class/hwmon/hwmon1/temp1_input") + ": not a number: \"garbage\"");
  t.Put("class/hwmon/hwmon1/temp1_input", "nan\n");
  CHECK_FALSE((*d)->Sample(0).ok());
  t.Put("class/hwmon/hwmon1/temp1_input", "");
  CHECK_FALSE((*d)->Sample(0).ok());
  t.Put("class/hwmon/hwmon1/temp1_input", "44000\n");
  CHECK(SampleValue(**d) == 44.0);

  auto nolabel = MakeDriver("hwmon", "chip = \"coretemp\", label = \"Core 7\"", t.root());
  REQUIRE(nolabel.ok());
  v = (*nolabel)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() == "hwmon chip \"coretemp\" (" + t.Path("class/hwmon/hwmon1") +
                                    ") has no input labelled \"Core 7\"");
  t.Remove("class/hwmon");
  v = (*d)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(),
             Catch::StartsWith("cannot read " + t.Path("class/hwmon/hwmon1/name")));
}

TEST_CASE("hwmon param errors") {
  struct Case {
    const char* params;
    const char* error;
  };
  for (const Case& c : {
           Case{"input = \"temp1_input\"",
                "sluice.toml:1:1: sensor \"s\": param \"chip\" is "
                "required for driver \"hwmon\""},
           Case{"chip = \"x\"",
                "sluice.toml:1:1: sensor \"s\": driver \"hwmon\" needs exactly "
                "one of params \"input\" (e.g. \"temp1_input\") and \"label\""},
           Case{"chip = \"x\", input = \"a\", label = \"b\"", "needs exactly one"},
           Case{"chip = \"x\", input = \"../../etc/passwd\"",
                "sluice.toml:2:32: sensor \"s\": param \"input\" must name one directory entry"},
           Case{"chip = \"x\", label = \" \"", "param \"label\" must not be empty"},
           Case{"chip = \"x\", input = \"t\", root = \"rel\"",
                "param \"root\" must be an absolute path"},
           Case{"chip = \"x\", input = \"t\", bogus = 1", "unknown param \"bogus\""},
       }) {
    auto d = MakeDriver("hwmon", c.params, "/sys");
    INFO(c.params);
    REQUIRE_FALSE(d.ok());
    CHECK_THAT(d.status().message(), Catch::Contains(c.error));
  }
}
