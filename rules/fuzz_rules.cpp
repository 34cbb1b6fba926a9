// libFuzzer target for the rule-file parser, the expression parser and the
// evaluator. Input: a rule file; its rules are installed in an engine that
// then gets readings derived from the input's bytes, ticks, a state round
// trip and a reload. Built with -DSLUICE_FUZZ=ON and clang (rules/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "rules/engine.h"
#include "rules/expr.h"
#include "rules/rule.h"
#include "rules/state.h"

using namespace sluice;
using namespace sluice::rules;

namespace {

// Installs `set` and drives it with readings derived from the input bytes
// (sensor, time step — sometimes backwards — and value), ticks, refills, a
// state round trip and a reload.
void Drive(RuleSet set, const uint8_t* data, size_t size) {
  FakeClock clock;
  EngineOptions opt;
  opt.max_window_readings = 64;
  Engine engine(clock, opt);
  std::vector<Alert> alerts;
  RuleSet copy = set;
  engine.Replace(std::move(set), &alerts);
  std::vector<std::string> sensors;
  for (const RuleDef& r : copy.rules) {
    for (const Ref& ref : r.when.refs) sensors.push_back(ref.sensor);
  }
  if (sensors.empty()) return;
  int64_t ts = clock.NowWallUs();
  for (size_t i = 0; i < size && i < 4096; ++i) {
    uint8_t b = data[i];
    Reading r;
    r.sensor = sensors[b % sensors.size()];
    ts += static_cast<int64_t>((b >> 3) % 8) * 700000 - 1000000;
    r.ts_us = ts;
    r.value = static_cast<double>(static_cast<int8_t>(b)) * ((i & 1) ? 1e9 : 0.5);
    if (i % 7 == 0) engine.Refill(r);
    else engine.OnReading(r, &alerts);
    if (i % 13 == 0) {
      clock.Advance(static_cast<int64_t>(b) * 1000000);
      engine.Tick(&alerts);
    }
    if (i == 100) engine.FinishRefill();
    if (alerts.size() > 1000) alerts.clear();
  }
  auto states = DecodeRuleStates(EncodeRuleStates(engine.ExportState()));
  if (!states.ok()) __builtin_trap();
  engine.Replace(std::move(copy), &alerts);
  (void)engine.ImportState(*states, &alerts);
  (void)engine.stats();
  (void)engine.refill_plan();
  for (const Alert& a : alerts) {
    if (a.state != "firing" && a.state != "resolved") __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  // The input as an expression.
  Expr e;
  ExprError err;
  if (!ParseCondition(text, &e, &err) && err.offset > text.size()) __builtin_trap();
  (void)DecodeRuleStates(text);
  // The input as the `when` of a rule, so the evaluator sees every
  // expression the parser accepts.
  bool plain = text.find("\'\'\'") == std::string::npos;
  for (char c : text) plain = plain && ((c >= 0x20 && c < 0x7f) || c == '\t');
  if (plain) {
    auto wrapped = ParseRuleFile("[[rule]]\nname = \"f\"\nfor = \"1s\"\ncooldown = \"2s\"\n"
                                 "when = '''" + text + "'''\n", "fuzz.toml");
    if (wrapped.ok() != ParseCondition(text, &e, &err)) __builtin_trap();
    if (wrapped.ok()) Drive(std::move(*wrapped), data, size);
  }
  // The input as a rule file.
  auto set = ParseRuleFile(text, "fuzz.toml");
  if (set.ok()) Drive(std::move(*set), data, size);
  return 0;
}
