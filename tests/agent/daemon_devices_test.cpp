// Shared devices (serial ports, Modbus links, I2C chips, command runs) are
// per daemon: sensors of one daemon share them, two daemons in one process
// never do.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "agent/config/config.h"
#include "agent/daemon/daemon.h"
#include "common/clock.h"
#include "tests/support/support.h"

namespace sluice {
namespace {

std::string Sensor(const std::string& name, int baud) {
  return "[[sensor]]\nname = \"" + name +
         "\"\ndriver = \"serial\"\nparams = { device = \"/dev/sluice-test-no-tty\", baud = " +
         std::to_string(baud) + " }\n";
}

StatusOr<std::unique_ptr<Daemon>> MakeDaemon(const testing::TempDir& dir, const std::string& sub,
                                             const std::string& sensors, Clock& clock) {
  std::string text = "[agent]\nid = \"" + sub + "\"\ndata_dir = \"" + dir.Join(sub) +
                     "\"\ncontrol_socket = \"" + dir.Join(sub + ".sock") + "\"\n" + sensors;
  StatusOr<Config> config = ParseConfig(text, sub + ".toml");
  REQUIRE(config.ok());
  return Daemon::Create(std::move(*config), clock);
}

TEST_CASE("two daemons in one process do not share devices") {
  testing::TempDir dir;
  SystemClock clock;
  auto a = MakeDaemon(dir, "a", Sensor("line", 9600), clock);
  REQUIRE(a.ok());
  // The same device at another speed: a conflict only within one daemon.
  auto b = MakeDaemon(dir, "b", Sensor("line", 19200), clock);
  INFO((b.ok() ? std::string() : b.status().message()));
  CHECK(b.ok());
}

TEST_CASE("sensors of one daemon share a device and must agree on it") {
  testing::TempDir dir;
  SystemClock clock;
  auto same = MakeDaemon(dir, "s", Sensor("one", 9600) + Sensor("two", 9600), clock);
  CHECK(same.ok());
  auto clash = MakeDaemon(dir, "c", Sensor("one", 9600) + Sensor("two", 19200), clock);
  REQUIRE_FALSE(clash.ok());
  CHECK_THAT(clash.status().message(), Catch::Contains("already used by sensor \"one\""));
}

}  // namespace
}  // namespace sluice
