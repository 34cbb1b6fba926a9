#include <catch2/catch.hpp>

#include <cmath>
#include <toml++/toml.h>

#include "common/clock.h"
#include "drivers/driver.h"
#include "drivers/simulated.h"

using namespace sluice;

namespace {

StatusOr<std::unique_ptr<Driver>> Make(const std::string& params_toml) {
  static FakeClock clock;
  SharedDevices devices;
  DriverContext ctx{clock, devices};
  toml::table root = toml::parse(std::string_view("[sensor]\nparams = " + params_toml + "\n"), std::string_view("sim.toml"));
  Params p("sim.toml", "sim", root["sensor"]["params"].as_table(), 1, 1);
  SensorSpec spec;
  spec.name = "sim";
  spec.driver = "simulated";
  return DriverRegistry::Builtin().Create(spec, p, ctx);
}

std::vector<double> Run(Driver& d, int n, int64_t t0, int64_t step) {
  std::vector<double> out;
  for (int i = 0; i < n; ++i) out.push_back(*d.Sample(t0 + i * step));
  return out;
}

}  // namespace

TEST_CASE("every shape stays within [min, max]") {
  for (const char* shape : {"sine", "random_walk", "sawtooth"}) {
    auto d = Make(std::string("{ shape = \"") + shape + "\", min = 20, max = 90.5, period = \"10s\", seed = 7 }");
    REQUIRE(d.ok());
    for (double v : Run(**d, 5000, 1764075600000000, 37000)) {
      CHECK(v >= 20.0);
      CHECK(v <= 90.5);
    }
  }
}

TEST_CASE("simulated values are deterministic for a seed and time") {
  auto a = Make("{ shape = \"random_walk\", seed = 42 }");
  auto b = Make("{ shape = \"random_walk\", seed = 42 }");
  auto c = Make("{ shape = \"random_walk\", seed = 43 }");
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(c.ok());
  auto va = Run(**a, 1000, 0, 1000000);
  CHECK(va == Run(**b, 1000, 0, 1000000));
  CHECK(va != Run(**c, 1000, 0, 1000000));

  auto s1 = Make("{ shape = \"sine\", period = \"1m\" }");
  auto s2 = Make("{ shape = \"sine\", period = \"1m\" }");
  REQUIRE(s1.ok());
  REQUIRE(s2.ok());
  for (int64_t t : {int64_t{0}, int64_t{123456789}, int64_t{1764075600123456}}) {
    CHECK(*(*s1)->Sample(t) == *(*s2)->Sample(t));
    CHECK(*(*s1)->Sample(t) == Approx(*(*s1)->Sample(t + 60000000)));  // periodic
  }
}

TEST_CASE("shapes have their documented values") {
  auto sine = Make("{ shape = \"sine\", min = 0, max = 100, period = \"4s\" }");
  REQUIRE(sine.ok());
  CHECK(*(*sine)->Sample(0) == Approx(50));
  CHECK(*(*sine)->Sample(1000000) == Approx(100));
  CHECK(*(*sine)->Sample(3000000) == Approx(0).margin(1e-9));

  auto saw = Make("{ shape = \"sawtooth\", min = 10, max = 20, period = \"10s\" }");
  REQUIRE(saw.ok());
  CHECK(*(*saw)->Sample(0) == Approx(10));
  CHECK(*(*saw)->Sample(5000000) == Approx(15));
  CHECK(*(*saw)->Sample(15000000) == Approx(15));
  CHECK(*(*saw)->Sample(-5000000) == Approx(15));

  auto c1 = Make("{ shape = \"constant\", min = 10, max = 20 }");
  REQUIRE(c1.ok());
  CHECK(*(*c1)->Sample(99) == 15);
  auto c2 = Make("{ shape = \"constant\", value = 3.25 }");
  REQUIRE(c2.ok());
  CHECK(*(*c2)->Sample(99) == 3.25);
}

TEST_CASE("simulated params are validated with positions") {
  auto shape = Make("{ shape = \"square\" }");
  REQUIRE_FALSE(shape.ok());
  CHECK_THAT(shape.status().message(),
             Catch::StartsWith("sim.toml:2:20: sensor \"sim\": param \"shape\" must be one of"));
  auto range = Make("{ min = 5, max = 5 }");
  REQUIRE_FALSE(range.ok());
  CHECK_THAT(range.status().message(), Catch::Contains("min < max"));
  auto period = Make("{ period = \"0s\" }");
  REQUIRE_FALSE(period.ok());
  CHECK_THAT(period.status().message(), Catch::Contains("param \"period\" must be greater than 0"));
  auto value = Make("{ shape = \"sine\", value = 1 }");
  REQUIRE_FALSE(value.ok());
  CHECK_THAT(value.status().message(), Catch::Contains("unknown param \"value\""));
  auto type = Make("{ seed = \"x\" }");
  REQUIRE_FALSE(type.ok());
  CHECK_THAT(type.status().message(), Catch::Contains("param \"seed\" must be an integer"));
}
