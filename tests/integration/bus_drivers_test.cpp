// sluiced with the bus drivers: a modbus sensor read from a real libmodbus
// server on a free loopback port lands in the ring with its scale applied,
// while i2c and gpio sensors whose hardware is absent fail on their own
// without stopping the daemon or the modbus sensor.
#include <sqlite3.h>  // test oracle: reads buffer.db read-only to check what is on disk
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "buffer/codec.h"
#include "schemas/sluice_generated.h"
#include "tests/drivers/modbus_server.h"
#include "tests/integration/it_support.h"

namespace sluice {
namespace testing {
namespace {

// Values of `sensor` in data_dir/buffer.db, oldest first.
std::vector<double> Values(const std::string& data_dir, const std::string& sensor) {
  std::vector<double> out;
  sqlite3* db = nullptr;
  std::string path = data_dir + "/buffer.db";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return out;
  }
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT body FROM events WHERE sensor = ? ORDER BY seq", -1, &st,
                         nullptr) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, sensor.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
      const void* body = sqlite3_column_blob(st, 0);
      size_t size = static_cast<size_t>(sqlite3_column_bytes(st, 0));
      if (body == nullptr || !VerifyEncodedEvent(body, size)) continue;
      out.push_back(flatbuffers::GetRoot<fb::Event>(body)->value());
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

}  // namespace

TEST_CASE("sluiced samples a Modbus server; absent i2c and gpio hardware only fail their sensors",
          "[integration][drivers]") {
  TempDir dir;
  int port = FreeLoopbackPort();
  ModbusTestServer server(port);
  std::string err;
  REQUIRE(server.Start(&err));
  server.SetHolding(4, {215});  // 21.5 after scale

  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  spec.sensors.push_back(
      "[[sensor]]\nname = \"plc.temp\"\ndriver = \"modbus\"\ninterval = \"100ms\"\n"
      "params = { url = \"tcp://127.0.0.1:" +
      std::to_string(port) + "\", register = 4, type = \"int16\", scale = 0.1 }\n");
  spec.sensors.push_back(
      "[[sensor]]\nname = \"room.temp\"\ndriver = \"i2c\"\ninterval = \"100ms\"\n"
      "params = { bus = 250, chip = \"bme280\" }\n");
  spec.sensors.push_back(
      "[[sensor]]\nname = \"door\"\ndriver = \"gpio\"\ninterval = \"100ms\"\n"
      "params = { chip = \"gpiochip250\", line = 3 }\n");
  std::string config = dir.Join("sluice.toml");
  REQUIRE(WriteFile(config, spec.ToToml()));

  Sluiced d(config, dir.Join("sluiced.err"));
  bool started = d.Start(&err);
  INFO(err << "\n" << d.Log());
  REQUIRE(started);
  bool got = WaitUntil([&] { return Values(spec.data_dir, "plc.temp").size() >= 5; }, 20000000);
  INFO(d.Log());
  REQUIRE(got);
  for (double v : Values(spec.data_dir, "plc.temp")) CHECK(v == Approx(21.5));
  CHECK(server.accepts() == 1);  // one connection kept across samples
  CHECK(WaitUntil([&] { return d.Log().find("/dev/i2c-250") != std::string::npos; }, 10000000));
  CHECK(WaitUntil([&] { return d.Log().find("gpiochip250") != std::string::npos; }, 10000000));
  CHECK(Values(spec.data_dir, "room.temp").empty());
  CHECK(Values(spec.data_dir, "door").empty());
  REQUIRE(d.Alive());
  int status = d.Terminate();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  server.Stop();
}

}  // namespace testing
}  // namespace sluice
