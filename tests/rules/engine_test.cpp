#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "rules_test_util.h"

using namespace sluice;
using namespace sluice::rules;
using namespace sluice::rules::testing;

TEST_CASE("event time: late, boundary, future, invalid, bad quality and unused readings") {
  Rig rig(R"toml([[rule]]
name = "three"
when = "count(x, 1m) >= 3"
)toml");
  rig.Feed("x", 100, 1);
  rig.Feed("x", 95, 1);     // exactly at the watermark (100 - 5): in time
  rig.Feed("x", 94.9, 1);   // behind it: late
  CHECK(rig.Take().empty());
  auto st = rig.engine.stats();
  CHECK(st.accepted == 2);
  CHECK(st.late == 1);

  Reading r;
  r.sensor = "x";
  r.value = 1;
  r.ts_us = rig.clock.NowWallUs() + 86400 * kSec + 1;  // beyond max_future
  rig.engine.OnReading(r, &rig.alerts);
  CHECK(rig.engine.stats().future == 1);
  r.value = std::numeric_limits<double>::quiet_NaN();
  r.ts_us = kT0 + 101 * kSec;
  rig.engine.OnReading(r, &rig.alerts);
  r.value = 1;
  r.ts_us = -5;
  rig.engine.OnReading(r, &rig.alerts);
  CHECK(rig.engine.stats().invalid == 2);
  rig.Feed("x", 101, 1, Quality::kBad);
  CHECK(rig.engine.stats().bad_quality == 1);
  rig.Feed("y", 101, 1);
  CHECK(rig.engine.stats().unused == 1);
  CHECK(rig.Take().empty());

  rig.Feed("x", 101, 1, Quality::kUncertain);  // third accepted reading
  CHECK(rig.Take() == Strings{"three:firing"});
  st = rig.engine.stats();
  CHECK(st.readings == 9);
  CHECK(st.accepted == 3);
}

TEST_CASE("a reading exactly max_future ahead of the wall clock is kept, 1 us more is future") {
  EngineOptions opt;
  opt.max_future_us = 10 * kSec;
  Rig rig("[[rule]]\nname = \"r\"\nwhen = \"x > 0\"\n", opt);
  rig.Send("x", kT0 + 10 * kSec + 1, -1);
  CHECK(rig.engine.stats().future == 1);
  rig.Send("x", kT0 + 10 * kSec, 1);  // held until the wall clock is 5 s behind it
  CHECK(rig.engine.stats().future == 1);
  CHECK(rig.engine.stats().ahead == 1);
  rig.clock.Advance(5 * kSec);
  rig.Tick();
  CHECK(rig.Take() == Strings{"r:firing"});
}

TEST_CASE("a bare sensor name is the value at its newest timestamp") {
  Rig rig("[[rule]]\nname = \"hot\"\nwhen = \"x > 50\"\n");
  rig.Feed("x", 10, 1);
  rig.Feed("x", 8, 100);  // out of order: older than the newest
  CHECK(rig.Take().empty());
  rig.Feed("x", 11, 60);
  CHECK(rig.Take() == Strings{"hot:firing"});
}

TEST_CASE("out-of-order readings within tolerance land in the right place") {
  Rig rig("[[rule]]\nname = \"first_high\"\nwhen = \"delta(x, 1m) < -5\"\n");
  rig.Feed("x", 10, 5);
  rig.Feed("x", 12, 5);
  rig.Feed("x", 8, 20);  // becomes the first reading: delta = 5 - 20
  CHECK(rig.Take() == Strings{"first_high:firing"});
}

TEST_CASE("for: fires only after holding that long on event time") {
  Rig rig("[[rule]]\nname = \"r\"\nwhen = \"x > 5\"\nfor = \"10s\"\n");
  rig.Feed("x", 0, 6);
  rig.Feed("x", 5, 6);
  rig.Feed("x", 9.999, 6);
  CHECK(rig.Take().empty());
  rig.Feed("x", 10, 6);
  CHECK(rig.Take() == Strings{"r:firing"});
  rig.Feed("x", 12, 7);
  rig.Feed("x", 11, 7);  // out of order: the rule's time does not go back
  CHECK(rig.Take().empty());
  rig.Feed("x", 13, 4);
  CHECK(rig.Take() == Strings{"r:resolved"});
  // An interruption restarts the timer.
  rig.Feed("x", 20, 6);
  rig.Feed("x", 25, 4);
  rig.Feed("x", 26, 6);
  rig.Feed("x", 35, 6);
  CHECK(rig.Take().empty());
  rig.Feed("x", 36, 6);
  CHECK(rig.Take() == Strings{"r:firing"});
  CHECK(rig.taken[0].ts_us == kT0 + 10 * kSec);
  CHECK(rig.taken[1].ts_us == kT0 + 13 * kSec);
}

TEST_CASE("cooldown holds the next firing back, once per episode") {
  Rig rig("[[rule]]\nname = \"r\"\nwhen = \"x > 5\"\ncooldown = \"1m\"\n");
  rig.Feed("x", 0, 6);
  CHECK(rig.Take() == Strings{"r:firing"});
  rig.Feed("x", 10, 1);
  CHECK(rig.Take() == Strings{"r:resolved"});
  rig.Feed("x", 20, 6);
  rig.Feed("x", 59.9, 6);
  CHECK(rig.Take().empty());
  rig.Feed("x", 60, 6);  // 60 s after the last firing
  CHECK(rig.Take() == Strings{"r:firing"});
  CHECK(rig.engine.stats().cooldown_held == 1);
  // A condition that stops holding during cooldown does not fire later.
  rig.Feed("x", 61, 1);
  CHECK(rig.Take() == Strings{"r:resolved"});
  rig.Feed("x", 62, 6);
  rig.Feed("x", 63, 1);
  rig.Feed("x", 130, 1);
  CHECK(rig.Take().empty());
}

TEST_CASE("clear gives hysteresis; one firing and one resolved per episode") {
  Rig rig(R"toml([[rule]]
name = "boiler_overheat"
when = "avg(boiler.temp, last(1)) > 85"
clear = "avg(boiler.temp, last(1)) < 80"
severity = "critical"
message = "Boiler at {value} C ({site}, {severity}, {rule}, {state}) {{ok}}"
labels = { site = "plant-1" }
)toml");
  rig.Feed("boiler.temp", 1, 86.2);
  rig.Feed("boiler.temp", 2, 90);
  rig.Feed("boiler.temp", 3, 82);  // below when, above clear: still firing
  rig.Feed("boiler.temp", 4, 86);
  CHECK(rig.Take() == Strings{"boiler_overheat:firing"});
  rig.Feed("boiler.temp", 5, 79.5);
  CHECK(rig.Take() == Strings{"boiler_overheat:resolved"});
  rig.Feed("boiler.temp", 6, 82);
  CHECK(rig.Take().empty());
  const Alert& f = rig.taken[0];
  CHECK(f.severity == "critical");
  CHECK(f.value == 86.2);
  CHECK(f.ts_us == kT0 + 1 * kSec);
  CHECK(f.message == "Boiler at 86.2 C (plant-1, critical, boiler_overheat, firing) {ok}");
  REQUIRE(f.labels.size() == 1);
  CHECK(f.labels[0] == std::make_pair(std::string("site"), std::string("plant-1")));
  const Alert& r = rig.taken[1];
  CHECK(r.value == 79.5);
  CHECK(r.message == "Boiler at 79.5 C (plant-1, critical, boiler_overheat, resolved) {ok}");
}

TEST_CASE("no value: unknown comparisons never hold, even under not") {
  Rig rig(R"toml([[rule]]
name = "flat"
when = "not (rate(x, 10s) > 1)"

[[rule]]
name = "div"
when = "x / (x - x) > 0 or x / 0 < 0"
)toml");
  rig.Feed("x", 0, 5);  // one reading: rate has no value
  CHECK(rig.Take().empty());
  rig.Feed("x", 1, 5);  // rate 0
  CHECK(rig.Take() == Strings{"flat:firing"});
}

TEST_CASE("default clear resolves when `when` stops being true, including unknown") {
  Rig rig("[[rule]]\nname = \"climb\"\nwhen = \"rate(x, 10s) > 1\"\n");
  rig.Feed("x", 0, 0);
  rig.Feed("x", 1, 10);
  CHECK(rig.Take() == Strings{"climb:firing"});
  rig.Feed("x", 20, 10);  // alone in its window: no rate
  CHECK(rig.Take() == Strings{"climb:resolved"});
  CHECK(std::isnan(rig.taken[1].value));  // no value now: reported as none
}

TEST_CASE("absent runs on the wall clock from Tick and resolves on the next reading") {
  Rig rig(R"toml([[rule]]
name = "boiler_silent"
when = "absent(boiler.temp, 2m)"
message = "{rule} {value}"
)toml");
  rig.Tick();
  rig.clock.Advance(119 * kSec);
  rig.Tick();
  CHECK(rig.Take().empty());
  rig.clock.Advance(1 * kSec);  // 2 minutes since the rules were installed
  rig.Tick();
  rig.Tick();
  CHECK(rig.Take() == Strings{"boiler_silent:firing"});
  CHECK(rig.taken[0].ts_us == rig.clock.NowWallUs());
  CHECK(rig.taken[0].value == 1);
  rig.clock.Advance(5 * kSec);
  Reading r;
  r.sensor = "boiler.temp";
  r.ts_us = 1000;  // event time is irrelevant to absent()
  r.value = 20;
  rig.engine.OnReading(r, &rig.alerts);
  CHECK(rig.Take() == Strings{"boiler_silent:resolved"});
  CHECK(rig.taken[1].value == 0);  // absent() is 0 now
  rig.clock.Advance(119 * kSec);
  rig.Tick();
  CHECK(rig.Take().empty());
  rig.clock.Advance(1 * kSec);
  rig.Tick();
  CHECK(rig.Take() == Strings{"boiler_silent:firing"});
}

TEST_CASE("absent with for and cooldown uses wall time") {
  Rig rig(R"toml([[rule]]
name = "quiet"
when = "absent(x, 10s) and absent(y, 10s)"
for = "30s"
)toml");
  rig.clock.Advance(10 * kSec);
  rig.Tick();  // pending
  rig.clock.Advance(29 * kSec);
  rig.Tick();
  CHECK(rig.Take().empty());
  rig.clock.Advance(1 * kSec);
  rig.Tick();
  CHECK(rig.Take() == Strings{"quiet:firing"});
}

TEST_CASE("a rule over two sensors is evaluated on readings of either") {
  Rig rig("[[rule]]\nname = \"gap\"\nwhen = \"a - b > 10\"\n");
  rig.Feed("a", 0, 20);  // b has no value yet
  CHECK(rig.Take().empty());
  rig.Feed("b", 0, 5);
  CHECK(rig.Take() == Strings{"gap:firing"});
  rig.Feed("a", 1, 10);
  CHECK(rig.Take() == Strings{"gap:resolved"});
  CHECK(rig.taken[0].value == 15);
  CHECK(rig.taken[1].value == 5);
}

TEST_CASE("windows are shared between rules that use the same sensor and window") {
  Rig rig(R"toml([[rule]]
name = "a"
when = "avg(x, 30s) > 1"
[[rule]]
name = "b"
when = "max(x, 30s) > 1 and min(x, 30s) < 0 and avg(x, last(5)) > 0"
[[rule]]
name = "c"
when = "absent(x, 1m) or x > 3"
)toml");
  auto st = rig.engine.stats();
  CHECK(st.windows == 2);
  CHECK(st.sensors == 1);
  CHECK(st.rules == 3);
}

TEST_CASE("a reading stamped a day ahead of the wall clock does not blind its sensor") {
  Rig rig("[[rule]]\nname = \"hot\"\nwhen = \"avg(t, 10s) > 50\"\n");
  const int64_t day = 86400 * kSec;
  rig.Send("t", kT0 + 23 * 3600 * kSec, 1);  // inside max_future (1d): held
  auto st = rig.engine.stats();
  CHECK(st.ahead == 1);
  CHECK(st.held == 1);
  CHECK(st.accepted == 0);
  for (int i = 1; i <= 3; ++i) {
    rig.clock.Advance(kSec);
    rig.Send("t", rig.clock.NowWallUs(), 60);  // stamped now
  }
  CHECK(rig.Take() == Strings{"hot:firing"});
  st = rig.engine.stats();
  CHECK(st.late == 0);
  CHECK(st.accepted == 3);
  // When the wall clock reaches it, the held reading is applied as if it
  // had just arrived.
  rig.clock.Advance(day - 3 * kSec);
  rig.Tick();
  CHECK(rig.Take() == Strings{"hot:resolved"});
  st = rig.engine.stats();
  CHECK(st.held == 0);
  CHECK(st.accepted == 4);
  CHECK(st.late == 0);
}

TEST_CASE("a gateway that boots with its clock behind evaluates the held readings once it is set") {
  Rig rig("[[rule]]\nname = \"hot\"\nwhen = \"avg(t, 30s) > 50\"\nfor = \"10s\"\n");
  const int64_t truth = kT0 + 3600 * kSec;  // the wall clock is an hour behind
  for (int i = 0; i < 20; ++i) rig.Send("t", truth + i * kSec, 60);
  CHECK(rig.engine.stats().held == 20);
  CHECK(rig.Take().empty());
  rig.clock.SetWall(truth + 20 * kSec);  // NTP sets the clock
  rig.Tick();
  CHECK(rig.Take() == Strings{"hot:firing"});
  CHECK(rig.taken[0].ts_us == truth + 10 * kSec);  // on event time, as if live
  auto st = rig.engine.stats();
  CHECK(st.held == 0);
  CHECK(st.accepted == 20);
  CHECK(st.late == 0);
}

TEST_CASE("the hold is bounded: the reading furthest ahead is dropped and counted") {
  EngineOptions opt;
  opt.max_held_readings = 2;
  Rig rig("[[rule]]\nname = \"r\"\nwhen = \"x > 0\"\n", opt);
  rig.Send("x", kT0 + 3600 * kSec, 1);
  rig.Send("x", kT0 + 7200 * kSec, 1);
  rig.Send("x", kT0 + 1800 * kSec, 1);  // displaces the +2h one
  rig.Send("x", kT0 + 9000 * kSec, 1);  // furthest ahead: dropped itself
  auto st = rig.engine.stats();
  CHECK(st.ahead == 4);
  CHECK(st.ahead_dropped == 2);
  CHECK(st.held == 2);
  rig.clock.Advance(7200 * kSec);
  rig.Tick();
  CHECK(rig.engine.stats().accepted == 2);
  CHECK(rig.engine.stats().held == 0);
}

TEST_CASE("refill holds a reading ahead of the wall clock once; a reload keeps the hold") {
  Rig rig("[[rule]]\nname = \"r\"\nwhen = \"count(x, last(5)) >= 2\"\n");
  Reading r;
  r.sensor = "x";
  r.value = 1;
  r.ts_us = kT0 + 60 * kSec;
  rig.engine.Refill(r);
  rig.engine.Refill(r);  // the same stored reading met again: one hold
  rig.engine.FinishRefill();
  CHECK(rig.engine.stats().held == 1);
  rig.engine.Replace(Rules("[[rule]]\nname = \"r2\"\nwhen = \"count(x, last(5)) >= 2\"\n"),
                     &rig.alerts);
  CHECK(rig.engine.stats().held == 1);
  rig.Feed("x", 1, 1);
  CHECK(rig.Take().empty());
  rig.clock.Advance(55 * kSec);
  rig.Tick();
  CHECK(rig.Take() == Strings{"r2:firing"});
}

TEST_CASE("a subject without a value is reported as no value, not 0") {
  Rig rig(R"toml([[rule]]
name = "dz"
when = "x / y > 1 or z > 0"
message = "dz {value}"
)toml");
  rig.Feed("x", 0, 1);
  rig.Feed("y", 0, 0);
  CHECK(rig.Take().empty());
  rig.Feed("z", 1, 1);  // fires on z; the subject x / y divides by zero
  CHECK(rig.Take() == Strings{"dz:firing"});
  CHECK(std::isnan(rig.taken[0].value));
  CHECK(rig.taken[0].message == "dz n/a");
  CHECK(std::isnan(rig.engine.ExportState()[0].value));
  rig.Feed("z", 2, 0);
  CHECK(rig.Take() == Strings{"dz:resolved"});
  CHECK(std::isnan(rig.taken[1].value));
  CHECK(rig.taken[1].message == "dz n/a");
}

TEST_CASE("large values in messages are printed in full, as in JSON") {
  Rig rig("[[rule]]\nname = \"big\"\nwhen = \"x > 0\"\nmessage = \"big {value}\"\n");
  rig.Feed("x", 0, 1e100);
  CHECK(rig.Take() == Strings{"big:firing"});
  CHECK(rig.taken[0].value == 1e100);
  CHECK(rig.taken[0].message == "big 1e+100");
}
