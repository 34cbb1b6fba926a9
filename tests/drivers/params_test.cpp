#include <catch2/catch.hpp>

#include <toml++/toml.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/build_options.h"
#include "common/clock.h"
#include "drivers/driver.h"
#include "drivers/params.h"
#include "drivers/simulated.h"

using namespace sluice;

namespace {

// Parses `text` as file.toml and returns the table at sensor.params.
struct Doc {
  toml::table root;
  explicit Doc(const std::string& text) : root(toml::parse(std::string_view(text), std::string_view("file.toml"))) {}
  const toml::table* params() const { return root["sensor"]["params"].as_table(); }
  Params Make(const std::string& name = "s1") const { return Params("file.toml", name, params(), 1, 1); }
};

}  // namespace

TEST_CASE("params read typed values and defaults") {
  Doc d(
      "[sensor]\n"
      "params = { a = 1.5, b = 2, c = true, d = \"x\", e = \"10m\", f = [\"p\", \"q\"] }\n");
  Params p = d.Make();
  CHECK(*p.Number("a", 0) == 1.5);
  CHECK(*p.Number("b", 0) == 2.0);  // integers are numbers
  CHECK(*p.Integer("b", 0) == 2);
  CHECK(*p.Bool("c", false));
  CHECK(*p.String("d", "") == "x");
  CHECK(*p.Duration("e", 0) == 600000000);
  CHECK(p.StringList("f")->size() == 2);
  CHECK(*p.Number("absent", 7) == 7);
  CHECK(*p.Duration("absent2", 5) == 5);
  CHECK(p.Has("a"));
  CHECK_FALSE(p.Has("zz"));
  CHECK(p.CheckAllUsed().ok());
}

TEST_CASE("param type errors name FILE:LINE:COL, sensor and key") {
  Doc d(
      "[sensor]\n"
      "params = { min = \"low\", seed = 1.5, period = 10, on = 1, l = [1] }\n");
  Params p = d.Make("boiler.temp");
  Status st = p.Number("min", 0).status();
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(st.message(), Catch::StartsWith(
      "file.toml:2:18: sensor \"boiler.temp\": param \"min\" must be a number"));
  CHECK_THAT(p.Integer("seed", 0).status().message(),
             Catch::StartsWith("file.toml:2:32: sensor \"boiler.temp\": param \"seed\" must be an integer"));
  CHECK_THAT(p.Duration("period", 0).status().message(),
             Catch::Contains("param \"period\" must be a duration"));
  CHECK_THAT(p.Bool("on", false).status().message(), Catch::Contains("must be a boolean"));
  CHECK_THAT(p.StringList("l").status().message(), Catch::Contains("must be a list of strings"));
}

TEST_CASE("a bad duration string says why") {
  Doc d("[sensor]\nparams = { period = \"10 minutes\" }\n");
  Params p = d.Make();
  std::string m = p.Duration("period", 0).status().message();
  CHECK_THAT(m, Catch::StartsWith("file.toml:2:21: sensor \"s1\": param \"period\" must be a duration"));
}

TEST_CASE("missing required param is located at the sensor") {
  Params p("cfg.toml", "in", nullptr, 12, 3);
  p.set_driver("push");
  CHECK(p.RequiredString("listen").status().message() ==
        "cfg.toml:12:3: sensor \"in\": param \"listen\" is required for driver \"push\"");
  CHECK(p.CheckAllUsed().ok());  // no table, nothing unknown
}

TEST_CASE("unknown params are errors at their position, naming the driver") {
  Doc d("[sensor.params]\nshape = \"sine\"\n  zeta = 1\nfoo = 2\n");
  Params p = d.Make("t");
  p.set_driver("simulated");
  (void)p.String("shape", "");
  Status st = p.CheckAllUsed();
  REQUIRE_FALSE(st.ok());
  // The first unknown key in file order, not in sorted order.
  CHECK(st.message() == "file.toml:3:3: sensor \"t\": unknown param \"zeta\" for driver \"simulated\"");
}

TEST_CASE("a driver left out of the build is an error naming its build option") {
  FakeClock clock;
  SharedDevices devices;
  DriverContext ctx{clock, devices};
  DriverRegistry reg;
  reg.Register("simulated", CreateSimulatedDriver);
  reg.RegisterLeftOut("modbus", "SLUICE_DRIVER_MODBUS");
  CHECK(reg.Names() == std::vector<std::string>{"simulated"});
  CHECK_FALSE(reg.Has("modbus"));
  SensorSpec spec;
  spec.name = "x";
  spec.driver = "modbus";
  Params none("c.toml", "x", nullptr, 4, 1);
  auto bad = reg.Create(spec, none, ctx);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() ==
        "c.toml:4:1: sensor \"x\": driver \"modbus\" was left out of this build (built with "
        "SLUICE_DRIVER_MODBUS=OFF; sluiced --version lists the drivers built in)");

  // The built-in registry: every driver is built in or left out by name.
  const DriverRegistry& builtin = DriverRegistry::Builtin();
  std::vector<std::string> names = builtin.Names();
  for (const auto& entry : builtin.left_out()) names.push_back(entry.first);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"command", "gpio", "hwmon", "i2c", "iio", "modbus",
                                          "mqtt", "push", "serial", "simulated", "sysfs", "w1"});
  CHECK(builtin.left_out().size() == static_cast<size_t>(
            !SLUICE_DRIVER_MODBUS + !SLUICE_DRIVER_GPIO + !SLUICE_DRIVER_I2C +
            !SLUICE_DRIVER_SERIAL + !SLUICE_DRIVER_MQTT));
}

TEST_CASE("registry creates built-in drivers and rejects unknown ones") {
  FakeClock clock;
  SharedDevices devices;
  DriverContext ctx{clock, devices};
  DriverRegistry& reg = DriverRegistry::Builtin();
  CHECK(reg.Has("simulated"));
  CHECK(reg.Has("push"));

  SensorSpec spec;
  spec.name = "x";
  spec.driver = "nope";
  Params none("c.toml", "x", nullptr, 4, 1);
  auto bad = reg.Create(spec, none, ctx);
  REQUIRE_FALSE(bad.ok());
  // The list grows with every driver: check its form and a few members.
  CHECK_THAT(bad.status().message(),
             Catch::StartsWith("c.toml:4:1: sensor \"x\": unknown driver \"nope\" (known: ") &&
                 Catch::Contains("push, ") && Catch::Contains("simulated"));
#if SLUICE_DRIVER_MODBUS  // a build option
  CHECK_THAT(bad.status().message(), Catch::Contains("modbus"));
#endif

  spec.driver = "simulated";
  Params empty("c.toml", "x", nullptr, 4, 1);
  auto ok = reg.Create(spec, empty, ctx);
  REQUIRE(ok.ok());
  CHECK((*ok)->polled());

  Doc d("[sensor]\nparams = { shape = \"sine\", foo = 1 }\n");
  Params p = d.Make("x");
  auto unknown = reg.Create(spec, p, ctx);
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().message() ==
        "file.toml:2:28: sensor \"x\": unknown param \"foo\" for driver \"simulated\"");

  spec.driver = "push";
  Params nolisten("c.toml", "x", nullptr, 4, 1);
  auto push = reg.Create(spec, nolisten, ctx);
  REQUIRE_FALSE(push.ok());
  CHECK_THAT(push.status().message(), Catch::Contains("param \"listen\" is required"));
}

TEST_CASE("common params fill the sensor spec") {
  Doc d("[sensor]\nparams = { scale = 2, offset = -1.5, deadband = 0.5, heartbeat = \"5m\" }\n");
  Params p = d.Make();
  SensorSpec spec;
  REQUIRE(ApplyCommonParams(p, &spec).ok());
  CHECK(spec.scale == 2.0);
  CHECK(spec.offset == -1.5);
  CHECK(spec.deadband == 0.5);
  CHECK(spec.heartbeat_us == 300000000);
  CHECK(p.CheckAllUsed().ok());

  Doc neg("[sensor]\nparams = { deadband = -1 }\n");
  Params q = neg.Make();
  CHECK_THAT(ApplyCommonParams(q, &spec).message(), Catch::Contains("param \"deadband\" must be >= 0"));
}
