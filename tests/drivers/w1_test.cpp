// driver = "w1" against a fake /sys/bus/w1/devices, and through the
// Scheduler's worker pool.
#include "drivers/w1.h"

#include <catch2/catch.hpp>

#include "drivers/scheduler.h"
#include "tests/drivers/fake_tree.h"
#include "tests/drivers/test_sink.h"

using namespace sluice;
using namespace sluice::testing;

namespace {

std::string Slave(const std::string& crc, const std::string& t,
                  const std::string& bytes = "72 01 4b 46 7f ff 0e 10 57") {
  return bytes + " : crc=57 " + crc + "\n" + bytes + " t=" + t + "\n";
}

const char* kId = "28-0000075d1c2a";

}  // namespace

TEST_CASE("w1_slave parsing") {
  auto ok = ParseW1Slave(Slave("YES", "23125"), "f");
  REQUIRE(ok.ok());
  CHECK(*ok == 23.125);
  CHECK(*ParseW1Slave(Slave("YES", "-1062"), "f") == -1.062);
  CHECK(*ParseW1Slave(Slave("YES", "0", "50 05 4b 46 7f ff 0c 10 1c"), "f") == 0.0);
  struct Case {
    std::string text;
    const char* error;
  };
  for (const Case& c : {
           Case{Slave("NO", "23125"), "f: CRC check failed (crc=57 NO)"},
           Case{Slave("YES", "85000"), "f: power-on reset value 85000 (no conversion was done)"},
           Case{Slave("YES", "0", "00 00 00 00 00 00 00 00 00"),
                "f: all-zero scratchpad (the device does not answer)"},
           Case{"", "f: empty"},
           Case{"72 01 4b 46 7f ff 0e 10 57 : crc=57 YES", "f: malformed (one line, expected two)"},
           Case{"garbage\nmore garbage\n", "f: malformed (no crc= on the first line)"},
           Case{"72 01 : crc=57 YES\n72 01\n", "f: malformed (no t= on the second line)"},
           Case{Slave("YES", "12x"), "f: malformed t= value \"12x\""},
           Case{Slave("YES", "nan"), "f: malformed t= value \"nan\""},
           Case{Slave("YES", ""), "f: malformed t= value \"\""},
       }) {
    auto v = ParseW1Slave(c.text, "f");
    INFO(c.text);
    REQUIRE_FALSE(v.ok());
    CHECK(v.status().message() == c.error);
  }
}

TEST_CASE("w1: a temperature outside the family's range is an error despite a good CRC") {
  const std::string ds18b20 = std::string("/sys/bus/w1/devices/") + kId + "/w1_slave";
  auto v = ParseW1Slave(Slave("YES", "2047937"), ds18b20);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() ==
        ds18b20 + ": 2047.937 C is outside the DS18B20's range (-55 to 125 C)");
  CHECK_FALSE(ParseW1Slave(Slave("YES", "-55063"), ds18b20).ok());
  CHECK(*ParseW1Slave(Slave("YES", "125000"), ds18b20) == 125.0);
  CHECK(*ParseW1Slave(Slave("YES", "-55000"), ds18b20) == -55.0);
  // DS28EA00 (family 42) reads -40..85 C; a thermocouple (3B) far more.
  CHECK_FALSE(ParseW1Slave(Slave("YES", "90000"), "/x/42-000000123456/w1_slave").ok());
  CHECK(*ParseW1Slave(Slave("YES", "900000"), "/x/3b-000000123456/w1_slave") == 900.0);
  // An unknown family is not range-checked.
  CHECK(*ParseW1Slave(Slave("YES", "2047937"), "/x/7e-000000123456/w1_slave") == 2047.937);

  FakeTree t;
  t.Put(std::string("bus/w1/devices/") + kId + "/w1_slave", Slave("YES", "2047937"));
  auto d = MakeDriver("w1", "device = \"28\"", t.root());
  REQUIRE(d.ok());
  CHECK_FALSE((*d)->Sample(0).ok());
}

TEST_CASE("w1 reads a device by id or by its family when it is the only one") {
  FakeTree t;
  t.Put(std::string("bus/w1/devices/") + kId + "/w1_slave", Slave("YES", "21500"));
  t.Put("bus/w1/devices/w1_bus_master1/name", "w1_bus_master1\n");
  auto by_id = MakeDriver("w1", std::string("device = \"") + kId + "\"", t.root());
  REQUIRE(by_id.ok());
  CHECK((*by_id)->blocking());
  CHECK(*(*by_id)->Sample(0) == 21.5);
  auto by_family = MakeDriver("w1", "device = \"28\"", t.root());
  REQUIRE(by_family.ok());
  CHECK(*(*by_family)->Sample(0) == 21.5);

  t.Put("bus/w1/devices/28-000007aaaaaa/w1_slave", Slave("YES", "19000"));
  auto two = MakeDriver("w1", "device = \"28\"", t.root());
  REQUIRE(two.ok());
  auto v = (*two)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() == "2 1-Wire devices of family 28 under " + t.Path("bus/w1/devices") +
                                    " (28-000007aaaaaa, 28-0000075d1c2a): name one in param "
                                    "\"device\"");
  auto none = MakeDriver("w1", "device = \"10\"", t.root());
  REQUIRE(none.ok());
  v = (*none)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message() == "no 1-Wire device of family 10 under " + t.Path("bus/w1/devices"));
  t.Put("bus/w1/devices/10-000801b5de8f/w1_slave", Slave("YES", "-5000"));
  CHECK(*(*none)->Sample(0) == -5.0);  // found once it appears
}

TEST_CASE("w1 param errors") {
  for (const char* params : {"", "device = \"\"", "device = \"x\"", "device = \"28/../..\"",
                             "device = \"zz-0000\"", "device = \"28-1\", root = \"rel\""}) {
    auto d = MakeDriver("w1", params, "/sys");
    INFO(params);
    REQUIRE_FALSE(d.ok());
    CHECK_THAT(d.status().message(), Catch::StartsWith("sluice.toml:"));
  }
}

TEST_CASE("w1 through the scheduler: CRC failures and 85000 fail the sensor, it recovers") {
  FakeTree t;
  const std::string file = std::string("bus/w1/devices/") + kId + "/w1_slave";
  t.Put(file, Slave("YES", "22000"));
  FakeClock clock;
  TestSink sink;
  SensorSpec spec;
  auto d = MakeDriver("w1", std::string("device = \"") + kId + "\"", t.root(), &spec);
  REQUIRE(d.ok());
  spec.interval_us = 1000000;
  Scheduler::Options o;
  o.seed = 1;
  o.backoff_initial_us = 1000000;
  o.backoff_max_us = 1000000;
  Scheduler sched(clock, sink, o);
  REQUIRE(sched.Add(spec, **d).ok());
  // One tick: dispatch to the pool, wait (bounded) for the worker, apply.
  auto tick = [&] {
    clock.Advance(1000000);
    sched.RunDue(clock.NowMonotonicUs());
    REQUIRE(WaitUntil(
        [&] {
          WorkerPoolStats p = sched.stats().pool;
          return p.busy == 0 && p.queued == 0;
        },
        10000000, 1000));
    sched.RunDue(clock.NowMonotonicUs());
  };
  tick();
  REQUIRE(sink.size() == 1);
  CHECK(sink.readings()[0].value == 22.0);
  SensorStatus s;
  for (const std::string& bad : {Slave("NO", "22000"), Slave("YES", "85000")}) {
    t.Put(file, bad);
    for (int i = 0; i < 3; ++i) tick();
    REQUIRE(sched.GetStatus("s", &s));
    CHECK(s.failing);
  }
  CHECK_THAT(s.last_error, Catch::Contains("85000"));
  CHECK(s.errors >= 2);
  t.Put(file, Slave("YES", "22500"));
  for (int i = 0; i < 3; ++i) tick();
  REQUIRE(sched.GetStatus("s", &s));
  CHECK_FALSE(s.failing);
  CHECK(sink.readings().back().value == 22.5);
  size_t n = sink.size();
  CHECK(n >= 2);
}
