// Helpers for the rules tests: rule sets from text and an engine rig on a
// FakeClock.
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/event.h"
#include "rules/engine.h"
#include "rules/rule.h"

namespace sluice {
namespace rules {
namespace testing {

constexpr int64_t kSec = 1000000;
// Event time 0 of the tests: the FakeClock's default wall time.
constexpr int64_t kT0 = 1764075600000000;

inline RuleSet Rules(const std::string& text, const std::string& path = "test.toml") {
  auto set = ParseRuleFile(text, path);
  INFO(set.status().ToString());
  REQUIRE(set.ok());
  return std::move(*set);
}

struct Rig {
  explicit Rig(const std::string& text, EngineOptions options = EngineOptions())
      : engine(clock, options) {
    engine.Replace(Rules(text), &alerts);
  }

  // A reading `secs` (may be fractional) after kT0. The wall clock follows
  // the data (as in `rules backtest`): a reading stamped after it moves it
  // there first, so it is never ahead. Tests of readings ahead of the wall
  // clock call Send().
  void Feed(const std::string& sensor, double secs, double value,
            Quality quality = Quality::kGood) {
    const int64_t ts = kT0 + static_cast<int64_t>(secs * kSec);
    if (ts > clock.NowWallUs()) clock.SetWall(ts);
    Send(sensor, ts, value, quality);
  }

  // A reading at `ts_us`, the clock left alone.
  void Send(const std::string& sensor, int64_t ts_us, double value,
            Quality quality = Quality::kGood) {
    Reading r;
    r.sensor = sensor;
    r.ts_us = ts_us;
    r.value = value;
    r.quality = quality;
    engine.OnReading(r, &alerts);
  }

  void Tick() { engine.Tick(&alerts); }

  // Alerts since the last call, as "rule:state" strings.
  std::vector<std::string> Take() {
    std::vector<std::string> out;
    for (const Alert& a : alerts) out.push_back(a.rule + ":" + a.state);
    taken.insert(taken.end(), alerts.begin(), alerts.end());
    alerts.clear();
    return out;
  }

  FakeClock clock;
  Engine engine;
  std::vector<Alert> alerts;
  std::vector<Alert> taken;
};

using Strings = std::vector<std::string>;

}  // namespace testing
}  // namespace rules
}  // namespace sluice
