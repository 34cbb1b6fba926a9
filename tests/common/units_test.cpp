#include <catch2/catch.hpp>

#include "common/backoff.h"
#include "common/units.h"

using namespace sluice;

TEST_CASE("durations parse as the contract writes them") {
  CHECK(*ParseDuration("250ms") == 250000);
  CHECK(*ParseDuration("5s") == 5000000);
  CHECK(*ParseDuration("10m") == 600000000);
  CHECK(*ParseDuration("2h") == 7200000000);
  CHECK(*ParseDuration("1d") == 86400000000);
  CHECK(*ParseDuration("0s") == 0);
  CHECK(*ParseDuration("1_000ms") == 1000000000 / 1000);
}

TEST_CASE("bad durations are errors that say why") {
  for (const char* bad : {"", "5", "s", "5 s", "-5s", "5sec", "1.5s", "99999999999999999999s"}) {
    auto d = ParseDuration(bad);
    INFO(bad);
    CHECK_FALSE(d.ok());
  }
  CHECK(ParseDuration("5x").status().message().find("unknown unit") != std::string::npos);
}

TEST_CASE("sizes parse with binary and decimal units") {
  CHECK(*ParseSize("512KiB") == 512u * 1024);
  CHECK(*ParseSize("256MiB") == 256ull << 20);
  CHECK(*ParseSize("1GiB") == 1ull << 30);
  CHECK(*ParseSize("4096") == 4096);
  CHECK(*ParseSize("10MB") == 10000000);
  CHECK_FALSE(ParseSize("1.5GiB").ok());
  CHECK_FALSE(ParseSize("MiB").ok());
  CHECK_FALSE(ParseSize("5 MiB").ok());
}

TEST_CASE("backoff doubles with jitter up to its cap and resets") {
  Backoff b(100, 1000, 42);
  int64_t d1 = b.NextDelayUs();
  CHECK(d1 >= 50);
  CHECK(d1 <= 100);
  int64_t d2 = b.NextDelayUs();
  CHECK(d2 >= 100);
  CHECK(d2 <= 200);
  int64_t d3 = b.NextDelayUs();
  CHECK(d3 >= 200);
  CHECK(d3 <= 400);
  int64_t d4 = b.NextDelayUs();
  CHECK(d4 >= 400);
  CHECK(d4 <= 800);
  for (int i = 0; i < 100; ++i) {
    int64_t d = b.NextDelayUs();
    CHECK(d >= 500);
    CHECK(d <= 1000);
  }
  b.Reset();
  CHECK(b.NextDelayUs() <= 100);
}

TEST_CASE("reconnect backoff starts over only after a connection stayed up") {
  FakeClock clock;
  ReconnectBackoff b(100, 100000, clock, /*stable_us=*/30000000, 7);
  CHECK(b.NextDelayUs() <= 100);  // a failed attempt
  // Connections that are dropped soon after they come up (CONNACK and all)
  // count as failed attempts: the delay keeps growing.
  int64_t last = 0;
  for (int i = 0; i < 6; ++i) {
    b.Connected();
    clock.Advance(100000);  // up for 100 ms
    last = b.NextDelayUs();
  }
  CHECK(b.failures() == 7);
  CHECK(last >= 3200);  // base 100 << 6, jitter [base/2, base]
  // Just short of the threshold: still a failure.
  b.Connected();
  clock.Advance(29999999);
  CHECK(b.NextDelayUs() >= 6400);
  // A connection that lasted 30 s resets the schedule.
  b.Connected();
  clock.Advance(30000000);
  CHECK(b.NextDelayUs() <= 100);
  CHECK(b.failures() == 1);
  // A failed attempt after that (no Connected()) keeps growing from there.
  clock.Advance(60000000);
  CHECK(b.NextDelayUs() >= 100);
  CHECK(b.failures() == 2);
}
