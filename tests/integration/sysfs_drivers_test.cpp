// The file-based drivers end to end: a real sluiced (SLUICE_SYSFS_ROOT
// pointing at a fake /sys tree in a temp dir) reads sysfs, hwmon, iio and w1
// sensors into buffer.db, survives hwmon renumbering and a w1 CRC failure,
// and a sensor whose file is garbage never stops the others.
#include <sqlite3.h>  // test oracle: reads buffer.db read-only to check what is on disk
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "schemas/sluice_generated.h"
#include "tests/drivers/fake_tree.h"
#include "tests/integration/it_support.h"

namespace sluice {
namespace testing {
namespace {

// Every (sensor -> values in seq order) committed so far (read-only).
std::map<std::string, std::vector<double>> ReadValues(const std::string& data_dir) {
  std::map<std::string, std::vector<double>> out;
  sqlite3* db = nullptr;
  std::string path = data_dir + "/buffer.db";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return out;
  }
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT body FROM events ORDER BY seq", -1, &st, nullptr) ==
      SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      const void* body = sqlite3_column_blob(st, 0);
      if (body == nullptr) continue;
      const auto* e = flatbuffers::GetRoot<fb::Event>(body);
      if (e->kind() == fb::Kind::Reading && e->sensor() != nullptr) {
        out[e->sensor()->str()].push_back(e->value());
      }
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

bool Has(const std::map<std::string, std::vector<double>>& v, const std::string& sensor,
         double value) {
  auto it = v.find(sensor);
  if (it == v.end()) return false;
  for (double x : it->second) {
    if (x > value - 1e-9 && x < value + 1e-9) return true;
  }
  return false;
}

std::string Sensor(const std::string& name, const std::string& driver, const std::string& params) {
  return "[[sensor]]\nname = \"" + name + "\"\ndriver = \"" + driver +
         "\"\ninterval = \"50ms\"\nparams = { " + params + " }\n";
}

// Starts sluiced with SLUICE_SYSFS_ROOT pointing at the fake tree.
bool StartOnFakeSys(Sluiced& d, const FakeTree& sys) {
  if (setenv("SLUICE_SYSFS_ROOT", sys.root().c_str(), 1) != 0) return false;
  std::string error;
  bool started = d.Start(&error);
  unsetenv("SLUICE_SYSFS_ROOT");
  return started;
}

const char* kW1 = "bus/w1/devices/28-0000075d1c2a/w1_slave";

std::string W1(const std::string& verdict, const std::string& t) {
  return "72 01 4b 46 7f ff 0e 10 57 : crc=57 " + verdict + "\n72 01 4b 46 7f ff 0e 10 57 t=" + t +
         "\n";
}

}  // namespace

TEST_CASE("sluiced reads sysfs, hwmon, iio and w1 sensors from a fake /sys",
          "[integration][drivers]") {
  TempDir dir;
  FakeTree sys;
  sys.Put("class/thermal/thermal_zone0/temp", "48312\n");
  sys.Put("class/hwmon/hwmon0/name", "acpitz\n");
  sys.Put("class/hwmon/hwmon1/name", "coretemp\n");
  sys.Put("class/hwmon/hwmon1/temp1_label", "Package id 0\n");
  sys.Put("class/hwmon/hwmon1/temp1_input", "45000\n");
  sys.Put("bus/iio/devices/iio:device0/name", "ads1015\n");
  sys.Put("bus/iio/devices/iio:device0/in_voltage0_raw", "1000\n");
  sys.Put("bus/iio/devices/iio:device0/in_voltage_scale", "2\n");
  sys.Put(kW1, W1("YES", "21500"));
  sys.Put("broken/value", "not a number\n");

  ConfigSpec cs;
  cs.data_dir = dir.Join("data");
  cs.control_socket = dir.Join("control.sock");
  cs.sensors = {
      Sensor("cpu.zone", "sysfs",
             "path = \"/sys/class/thermal/thermal_zone0/temp\", scale = 0.001"),
      Sensor("cpu.pkg", "hwmon", "chip = \"coretemp\", label = \"Package id 0\""),
      Sensor("adc.v0", "iio", "device = \"ads1015\", channel = \"voltage0\""),
      Sensor("room", "w1", "device = \"28\""),
      Sensor("broken", "sysfs", "path = \"/sys/broken/value\""),
  };
  const std::string config = dir.Join("sluice.toml");
  REQUIRE(WriteFile(config, cs.ToToml()));
  Sluiced d(config, dir.Join("sluiced.log"));
  REQUIRE(StartOnFakeSys(d, sys));
  INFO("log: " << d.Log());

  auto values = [&] { return ReadValues(cs.data_dir); };
  CHECK(WaitUntil(
      [&] {
        auto v = values();
        return Has(v, "cpu.zone", 48.312) && Has(v, "cpu.pkg", 45.0) && Has(v, "adc.v0", 2000.0) &&
               Has(v, "room", 21.5);
      },
      15000000, 50000));

  // "Reboot" of the hwmon numbering: coretemp moves to hwmon3 and another
  // chip takes hwmon1.
  sys.Rename("class/hwmon/hwmon1", "class/hwmon/hwmon3");
  sys.Put("class/hwmon/hwmon3/temp1_input", "47000\n");
  sys.Put("class/hwmon/hwmon1/name", "nvme\n");
  sys.Put("class/hwmon/hwmon1/temp1_label", "Package id 0\n");
  sys.Put("class/hwmon/hwmon1/temp1_input", "99000\n");
  // The w1 sensor fails its CRC, then reads again.
  sys.Put(kW1, W1("NO", "22000"));
  CHECK(WaitUntil([&] { return Has(values(), "cpu.pkg", 47.0); }, 15000000, 50000));
  CHECK(WaitUntil([&] { return d.Log().find("CRC check failed") != std::string::npos; }, 15000000,
                  50000));
  CHECK_FALSE(Has(values(), "room", 22.0));
  sys.Put(kW1, W1("YES", "22500"));
  CHECK(WaitUntil([&] { return Has(values(), "room", 22.5); }, 15000000, 50000));

  REQUIRE(d.Alive());
  int status = d.Terminate();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  auto v = values();
  CHECK_FALSE(Has(v, "cpu.pkg", 99.0));  // never read the other chip
  CHECK(v.count("broken") == 0);
  const std::string log = d.Log();
  CHECK(log.find("sensor \"broken\" failing") != std::string::npos);
  CHECK(log.find("not a number: \"not a number\"") != std::string::npos);
}


TEST_CASE("a read blocked in the kernel neither stalls other sensors nor the shutdown",
          "[integration][drivers]") {
  // open() of a FIFO with no writer blocks in the kernel for good: the
  // nearest thing to a wedged bus a test can build.
  TempDir dir;
  FakeTree sys;
  sys.Put("class/thermal/thermal_zone0/temp", "48312\n");
  const std::string fifo = sys.root() + "/wedged";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);

  ConfigSpec cs;
  cs.data_dir = dir.Join("data");
  cs.control_socket = dir.Join("control.sock");
  cs.shutdown_grace = "1s";
  cs.sensors = {
      Sensor("cpu.zone", "sysfs", "path = \"/sys/class/thermal/thermal_zone0/temp\""),
      Sensor("wedged", "sysfs", "path = \"/sys/wedged\", timeout = \"200ms\""),
  };
  const std::string config = dir.Join("sluice.toml");
  REQUIRE(WriteFile(config, cs.ToToml()));
  Sluiced d(config, dir.Join("sluiced.log"));
  REQUIRE(StartOnFakeSys(d, sys));
  INFO("log: " << d.Log());

  CHECK(WaitUntil([&] { return d.Log().find("timed out") != std::string::npos; }, 15000000,
                  50000));
  // The other sensor keeps being read while the wedged one hangs.
  sys.Put("class/thermal/thermal_zone0/temp", "50000\n");
  CHECK(WaitUntil([&] { return Has(ReadValues(cs.data_dir), "cpu.zone", 50000.0); }, 15000000,
                  50000));
  // SIGTERM: the blocked read is abandoned after shutdown_grace, what was
  // read is committed, exit 0 (Terminate() SIGKILLs after 15 s).
  int status = d.Terminate();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(d.Log().find("still blocked") != std::string::npos);
  CHECK(Has(ReadValues(cs.data_dir), "cpu.zone", 50000.0));
}

}  // namespace testing
}  // namespace sluice
