// The gpio driver through a simulated chip (edges injected from a test
// thread), and the real libgpiod adapter's error paths.
#include "drivers/gpio/gpio.h"

#include <dirent.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "common/clock.h"
#include "make_driver.h"
#include "sim_gpio.h"
#include "tests/support/support.h"

using namespace sluice;
using sluice::testing::MakeDriver;
using sluice::testing::SimGpioChip;
using sluice::testing::WaitUntil;

namespace {

constexpr int64_t kSec = 1000000;

SimGpioChip MakeChip() { return SimGpioChip("gpiochip0", {"", "DOOR", "FLOW", "WIND"}); }

GpioConfig Config(GpioMode mode, GpioEdge edge, int offset, bool active_low = false) {
  GpioConfig c;
  c.mode = mode;
  c.line.offset = offset;
  c.line.edge = mode == GpioMode::kLevel ? GpioEdge::kNone : edge;
  c.line.active_low = active_low;
  return c;
}

// Pulses: `n` low->high->low cycles on `offset`.
void Pulse(SimGpioChip& chip, int offset, int n) {
  for (int i = 0; i < n; ++i) {
    chip.SetLevel(offset, 1);
    chip.SetLevel(offset, 0);
  }
}

}  // namespace

TEST_CASE("gpio level mode reads the line, by name or offset, with active_low") {
  SimGpioChip chip = MakeChip();
  FakeClock clock;
  GpioConfig by_name = Config(GpioMode::kLevel, GpioEdge::kNone, -1);
  by_name.line.name = "DOOR";
  by_name.line.bias = GpioBias::kPullUp;
  GpioDriver door(by_name, chip.Opener(), clock);
  GpioDriver inverted(Config(GpioMode::kLevel, GpioEdge::kNone, 2, true), chip.Opener(), clock);
  CHECK(door.blocking());
  CHECK(*door.Sample(0) == 0.0);
  CHECK(chip.last_bias() == GpioBias::kPullUp);
  CHECK(*inverted.Sample(0) == 1.0);
  chip.SetLevel(1, 1);
  chip.SetLevel(2, 1);
  CHECK(*door.Sample(0) == 1.0);
  CHECK(*inverted.Sample(0) == 0.0);
}

TEST_CASE("gpio counts edges injected from another thread without losing any", "[tsan]") {
  SimGpioChip chip = MakeChip();
  FakeClock clock;
  GpioDriver rising(Config(GpioMode::kCount, GpioEdge::kRising, 1), chip.Opener(), clock);
  GpioDriver falling(Config(GpioMode::kCount, GpioEdge::kFalling, 2), chip.Opener(), clock);
  GpioDriver both(Config(GpioMode::kCount, GpioEdge::kBoth, 3), chip.Opener(), clock);
  for (GpioDriver* d : {&rising, &falling, &both}) {
    StatusOr<double> first = d->Sample(0);  // starts counting
    REQUIRE_FALSE(first.ok());
    CHECK_THAT(first.status().message(), Catch::Contains("counting edges from now"));
  }
  // Pulses arrive while the driver samples: every edge lands in exactly one
  // sample.
  std::thread injector([&] {
    Pulse(chip, 1, 3000);
    Pulse(chip, 2, 2000);
    Pulse(chip, 3, 1000);
  });
  double sum_rising = 0;
  for (int i = 0; i < 50; ++i) {
    StatusOr<double> v = rising.Sample(0);
    REQUIRE(v.ok());
    sum_rising += *v;
  }
  injector.join();
  CHECK(WaitUntil([&] { return rising.edges_seen() == 3000; }, 10 * kSec, 1000));
  CHECK(WaitUntil([&] { return falling.edges_seen() == 2000; }, 10 * kSec, 1000));
  CHECK(WaitUntil([&] { return both.edges_seen() == 2000; }, 10 * kSec, 1000));
  sum_rising += *rising.Sample(0);
  CHECK(sum_rising == 3000);
  CHECK(*falling.Sample(0) == 2000);
  CHECK(*both.Sample(0) == 2000);
  CHECK(*both.Sample(0) == 0);  // the count restarts each sample
}

TEST_CASE("gpio rate mode reports edges per second over the interval") {
  SimGpioChip chip = MakeChip();
  FakeClock clock;
  GpioDriver wind(Config(GpioMode::kRate, GpioEdge::kRising, 3), chip.Opener(), clock);
  REQUIRE_FALSE(wind.Sample(0).ok());
  Pulse(chip, 3, 500);
  REQUIRE(WaitUntil([&] { return wind.edges_seen() == 500; }, 10 * kSec, 1000));
  clock.Advance(2 * kSec);
  StatusOr<double> rate = wind.Sample(0);
  REQUIRE(rate.ok());
  CHECK(*rate == Approx(250.0));
  Pulse(chip, 3, 30);
  REQUIRE(WaitUntil([&] { return wind.edges_seen() == 530; }, 10 * kSec, 1000));
  clock.Advance(kSec / 2);
  CHECK(*wind.Sample(0) == Approx(60.0));
}

TEST_CASE("gpio: no such line, busy line, unplugged chip and recovery") {
  SimGpioChip chip = MakeChip();
  FakeClock clock;
  GpioConfig missing = Config(GpioMode::kLevel, GpioEdge::kNone, -1);
  missing.line.name = "NOPE";
  StatusOr<double> v = GpioDriver(missing, chip.Opener(), clock).Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::Contains("has no line named \"NOPE\""));
  v = GpioDriver(Config(GpioMode::kLevel, GpioEdge::kNone, 9), chip.Opener(), clock).Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::Contains("no line 9"));

  GpioDriver flow(Config(GpioMode::kCount, GpioEdge::kRising, 2), chip.Opener(), clock);
  REQUIRE_FALSE(flow.Sample(0).ok());
  GpioDriver again(Config(GpioMode::kLevel, GpioEdge::kNone, 2), chip.Opener(), clock);
  v = again.Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::Contains("busy"));

  Pulse(chip, 2, 5);
  REQUIRE(WaitUntil([&] { return flow.edges_seen() == 5; }, 10 * kSec, 1000));
  chip.SetGone(true);
  // The watcher sees the line go away; the next sample reports it.
  REQUIRE(WaitUntil([&] { return !flow.Sample(0).ok(); }, 10 * kSec, 1000));
  v = flow.Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::Contains("cannot open chip"));
  chip.SetGone(false);
  v = flow.Sample(0);  // requested again: counting restarts
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::Contains("counting edges from now"));
  Pulse(chip, 2, 7);
  REQUIRE(WaitUntil([&] { return flow.edges_seen() == 7; }, 10 * kSec, 1000));
  CHECK(*flow.Sample(0) == 7);
}

TEST_CASE("gpio libgpiod adapter: missing chips are clear errors") {
  // This machine has no GPIO chips (and no gpio-sim / gpio-mockup modules),
  // so only the paths before a chip opens run against the real library.
  DIR* dev = opendir("/dev");
  REQUIRE(dev != nullptr);
  bool any_chip = false;
  while (dirent* e = readdir(dev)) any_chip |= std::string(e->d_name).rfind("gpiochip", 0) == 0;
  closedir(dev);
  StatusOr<std::unique_ptr<GpioChip>> none = OpenGpiodChip("gpiochip250");
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().code() == StatusCode::kNotFound);
  CHECK_THAT(none.status().message(), Catch::Contains("cannot open chip \"gpiochip250\""));
  sluice::testing::TempDir dir;
  std::string file = dir.Join("gpiochip-fake");
  REQUIRE(sluice::testing::WriteFile(file, "x"));
  StatusOr<std::unique_ptr<GpioChip>> not_chip = OpenGpiodChip(file);
  REQUIRE_FALSE(not_chip.ok());
  CHECK_THAT(not_chip.status().message(), Catch::Contains(file));
  CHECK_THAT(not_chip.status().message(), Catch::Contains("not a GPIO character device"));
  StatusOr<std::unique_ptr<GpioChip>> null_dev = OpenGpiodChip("/dev/null");
  REQUIRE_FALSE(null_dev.ok());
  CHECK_THAT(null_dev.status().message(), Catch::Contains("not a GPIO character device"));
  if (!any_chip) {
    StatusOr<std::unique_ptr<GpioChip>> first = OpenGpiodChip("gpiochip0");
    CHECK_FALSE(first.ok());
  }

  // Through the registry: the config is valid, the sample names the chip.
  FakeClock clock;
  auto d = MakeDriver(clock, "gpio",
                      "{ chip = \"gpiochip250\", line = 17, mode = \"rate\", edge = \"both\" }");
  INFO(d.status().message());
  REQUIRE(d.ok());
  StatusOr<double> v = (*d)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::Contains("gpiochip250"));
}

TEST_CASE("gpio params are validated with positions") {
  FakeClock clock;
  auto err = [&](const std::string& params) {
    auto d = MakeDriver(clock, "gpio", params, "v");
    REQUIRE_FALSE(d.ok());
    return d.status().message();
  };
  CHECK_THAT(err("{ chip = \"gpiochip0\" }"), Catch::Contains("param \"line\" is required"));
  CHECK_THAT(err("{ line = -1 }"), Catch::Contains("param \"line\" must be an offset"));
  CHECK_THAT(err("{ line = 1.5 }"), Catch::Contains("must be a line offset (17) or a line name"));
  CHECK_THAT(err("{ line = 4, mode = \"pwm\" }"),
             Catch::StartsWith("t.toml:2:29: sensor \"v\": param \"mode\" must be one of level, "
                               "count, edges, rate"));
  CHECK_THAT(err("{ line = 4, edge = \"rising\" }"),
             Catch::Contains("param \"edge\" applies to mode = \"count\" or \"rate\" only"));
  CHECK_THAT(err("{ line = 4, mode = \"count\", edge = \"up\" }"),
             Catch::Contains("must be one of rising, falling, both"));
  CHECK_THAT(err("{ line = 4, bias = \"strong\" }"),
             Catch::Contains("must be one of as_is, disable, pull_up, pull_down"));
  CHECK_THAT(err("{ line = 4, active_low = 1 }"), Catch::Contains("must be a boolean"));
  CHECK_THAT(err("{ line = 4, debounce = \"5ms\" }"),
             Catch::Contains("unknown param \"debounce\" for driver \"gpio\""));
  CHECK(MakeDriver(clock, "gpio",
                   "{ line = \"DOOR\", mode = \"edges\", edge = \"falling\", "
                   "active_low = true, bias = \"pull_up\" }")
            .ok());
}
