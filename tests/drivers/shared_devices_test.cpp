// SharedDevices: one live device per (type, key), shared while held,
// checked for compatibility, forgotten once no one holds it.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "drivers/shared_devices.h"

namespace sluice {
namespace {

struct Port {
  explicit Port(int b) : baud(b) {}
  int baud;
};
struct Chip {
  int id = 0;
};

StatusOr<std::shared_ptr<Port>> GetPort(SharedDevices& d, const std::string& key, int baud,
                                        int* made) {
  return d.Acquire<Port>(
      key,
      [&] {
        ++*made;
        return std::make_shared<Port>(baud);
      },
      [&](const Port& p) -> Status {
        if (p.baud == baud) return Status::Ok();
        return InvalidArgument("already open at " + std::to_string(p.baud));
      });
}

TEST_CASE("shared devices: one per key while held, checked, then made anew") {
  SharedDevices devices;
  int made = 0;
  auto a = GetPort(devices, "/dev/x", 9600, &made);
  auto b = GetPort(devices, "/dev/x", 9600, &made);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->get() == b->get());
  CHECK(made == 1);
  auto clash = GetPort(devices, "/dev/x", 19200, &made);
  REQUIRE_FALSE(clash.ok());
  CHECK(clash.status().message() == "already open at 9600");
  auto other = GetPort(devices, "/dev/y", 19200, &made);
  REQUIRE(other.ok());
  CHECK(devices.live() == 2);

  // Another type under the same key is another device.
  auto chip = devices.Acquire<Chip>(
      "/dev/x", [] { return std::make_shared<Chip>(); },
      [](const Chip&) { return Status::Ok(); });
  REQUIRE(chip.ok());
  CHECK(devices.live() == 3);

  // Released by every holder: the next sensor gets a new one, any settings.
  a = Status(InvalidArgument("released"));
  b = Status(InvalidArgument("released"));
  auto fresh = GetPort(devices, "/dev/x", 19200, &made);
  REQUIRE(fresh.ok());
  CHECK((*fresh)->baud == 19200);
  CHECK(made == 3);
}

TEST_CASE("shared devices: two registries never share") {
  SharedDevices one;
  SharedDevices two;
  int made = 0;
  auto a = GetPort(one, "/dev/x", 9600, &made);
  auto b = GetPort(two, "/dev/x", 19200, &made);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a->get() != b->get());
}

}  // namespace
}  // namespace sluice
