// driver = "iio" against a fake /sys/bus/iio/devices.
#include "drivers/iio.h"

#include <catch2/catch.hpp>

#include "tests/drivers/fake_tree.h"

using namespace sluice;
using namespace sluice::testing;

namespace {

void Adc(FakeTree& t, const std::string& dev) {
  const std::string d = "bus/iio/devices/" + dev + "/";
  t.Put(d + "name", "ads1015\n");
  t.Put(d + "in_voltage0_raw", "1000\n");
  t.Put(d + "in_voltage0_offset", "-100\n");
  t.Put(d + "in_voltage0_scale", "0.5\n");
  t.Put(d + "in_voltage1_raw", "10\n");
  t.Put(d + "in_voltage_scale", "2.000000\n");  // shared by the type
  t.Put(d + "in_voltage2_raw", "33\n");
}

}  // namespace

TEST_CASE("iio: (raw + offset) * scale per channel, shared scale, _input preferred") {
  FakeTree t;
  t.Put("bus/iio/devices/iio:device0/name", "bmp280\n");
  t.Put("bus/iio/devices/iio:device0/in_temp_input", "23510\n");
  t.Put("bus/iio/devices/iio:device0/in_temp_raw", "1\n");
  Adc(t, "iio:device1");
  struct Case {
    const char* device;
    const char* channel;
    double value;
  };
  for (const Case& c : {Case{"ads1015", "voltage0", 450.0},  // (1000 - 100) * 0.5
                        Case{"ads1015", "voltage1", 20.0},   // shared in_voltage_scale
                        Case{"ads1015", "voltage2", 66.0}, Case{"bmp280", "temp", 23510.0}}) {
    auto d = MakeDriver(
        "iio", "device = \"" + std::string(c.device) + "\", channel = \"" + c.channel + "\"",
        t.root());
    REQUIRE(d.ok());
    CHECK((*d)->blocking());
    INFO(c.device << " " << c.channel);
    CHECK(SampleValue(**d) == Approx(c.value));
  }
}

TEST_CASE("iio follows its device when iio:deviceN is renumbered") {
  FakeTree t;
  Adc(t, "iio:device0");
  auto d = MakeDriver("iio", "device = \"ads1015\", channel = \"voltage0\"", t.root());
  REQUIRE(d.ok());
  CHECK(SampleValue(**d) == 450.0);
  t.Rename("bus/iio/devices/iio:device0", "bus/iio/devices/iio:device2");
  t.Put("bus/iio/devices/iio:device0/name", "other\n");
  t.Put("bus/iio/devices/iio:device0/in_voltage0_raw", "5\n");
  t.Put("bus/iio/devices/iio:device2/in_voltage0_raw", "1100\n");
  CHECK(SampleValue(**d) == 500.0);
  CHECK(static_cast<IioDriver&>(**d).location() == t.Path("bus/iio/devices/iio:device2"));
}

TEST_CASE("iio: absent device or channel, bad files fail the read") {
  FakeTree t;
  t.Put("bus/iio/devices/iio:device0/name", "x\n");
  auto d = MakeDriver("iio", "device = \"ads1015\", channel = \"voltage0\"", t.root());
  REQUIRE(d.ok());
  auto v = (*d)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() ==
        "no IIO device named \"ads1015\" under " + t.Path("bus/iio/devices"));
  Adc(t, "iio:device3");
  CHECK(SampleValue(**d) == 450.0);
  t.Put("bus/iio/devices/iio:device3/in_voltage0_scale", "inf\n");
  v = (*d)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(),
             Catch::EndsWith("in_voltage0_scale: not a finite number: \"inf\""));
  t.Put("bus/iio/devices/iio:device3/in_voltage0_scale", "0.5\n");
  t.Put("bus/iio/devices/iio:device3/in_voltage0_raw", "\n");
  v = (*d)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::EndsWith("in_voltage0_raw: empty"));
  auto nochan = MakeDriver("iio", "device = \"ads1015\", channel = \"voltage7\"", t.root());
  REQUIRE(nochan.ok());
  v = (*nochan)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() == "IIO device \"ads1015\" (" + t.Path("bus/iio/devices/iio:device3") +
                                    ") has neither in_voltage7_input nor in_voltage7_raw");
}

TEST_CASE("iio: a zero scale fails the read instead of reading 0 forever") {
  FakeTree t;
  Adc(t, "iio:device0");
  t.Put("bus/iio/devices/iio:device0/in_voltage0_scale", "0\n");
  auto d = MakeDriver("iio", "device = \"ads1015\", channel = \"voltage0\"", t.root());
  REQUIRE(d.ok());
  auto v = (*d)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() == t.Path("bus/iio/devices/iio:device0/in_voltage0_scale") +
                                    ": scale is 0 (every reading would be 0)");
  t.Put("bus/iio/devices/iio:device0/in_voltage_scale", "0.000000\n");  // shared, also 0
  auto shared = MakeDriver("iio", "device = \"ads1015\", channel = \"voltage1\"", t.root());
  REQUIRE(shared.ok());
  CHECK_FALSE((*shared)->Sample(0).ok());
  t.Put("bus/iio/devices/iio:device0/in_voltage0_scale", "0.5\n");
  CHECK(SampleValue(**d) == 450.0);
}

TEST_CASE("iio param errors") {
  for (const char* params :
       {"channel = \"voltage0\"", "device = \"a\"", "device = \"a\", channel = \"../x\"",
        "device = \"a\", channel = \"0volt\"", "device = \"\", channel = \"voltage0\"",
        "device = \"a\", channel = \"voltage0\", extra = true"}) {
    auto d = MakeDriver("iio", params, "/sys");
    INFO(params);
    REQUIRE_FALSE(d.ok());
    CHECK_THAT(d.status().message(), Catch::StartsWith("sluice.toml:"));
  }
  auto d = MakeDriver("iio", "device = \"a\", channel = \"../x\"", "/sys");
  CHECK(d.status().message() ==
        "sluice.toml:2:36: sensor \"s\": param \"channel\" must be an IIO "
        "channel like \"voltage0\" or \"temp\", got \"../x\"");
}
