// The rules engine: evaluates a RuleSet on every reading and produces
// alerts (common/event.h) through each rule's state machine.
//
// Threading: not thread-safe. The daemon calls every method from one
// thread — the thread that commits readings to the ring (writer thread).
// The Clock must outlive the engine (its methods are thread-safe).
//
// Event time. Each sensor has a watermark: its newest accepted timestamp
// minus late_tolerance. Event time never runs ahead of the wall clock: a
// reading stamped more than late_tolerance ahead of it would put its
// sensor's watermark past the wall clock (every reading stamped now would
// then be late, for as long as the stamp is ahead), so it waits instead.
// A reading is
// - invalid (counted, dropped) if its value is not finite or its timestamp
//   is outside [0, 2^62) µs;
// - bad quality (counted, dropped): Quality::kBad readings never enter a
//   window; kUncertain ones do;
// - unused (counted) if no rule reads its sensor;
// - future (counted, dropped) if ts > Clock::NowWallUs() + max_future (the
//   clock is read at least every 64 readings and before every rejection, so
//   a wall clock stepped back is noticed within 64 readings);
// - ahead (counted) if ts > NowWallUs() + late_tolerance (the clock is read
//   again before holding): held, in memory, until the wall clock reaches
//   ts - late_tolerance (checked on every reading and every Tick()), then
//   treated as if it had just arrived (counted accepted, late or unused).
//   At most max_held_readings wait; beyond that the one stamped furthest
//   ahead is dropped (counted ahead_dropped). Held readings survive
//   Replace(); Refill() holds the ones it meets (once). A reading ahead
//   of the wall clock therefore never moves a watermark or a window;
// - late (counted, dropped) if ts < watermark (ts == watermark is in time);
// - otherwise applied to every window of its sensor, in timestamp order
//   even when it arrived out of order, and every rule that reads the sensor
//   is evaluated. A sensor's windows end at its own newest timestamp.
//
// Alert state machine per rule: inactive -> pending -> firing -> (resolved)
// inactive.
// - inactive: when `when` holds (is true), becomes pending (pending_since).
// - pending: `when` no longer true -> inactive, silently. Held for `for`
//   (t - pending_since >= for) and at least `cooldown` after the previous
//   firing (t - last_fired >= cooldown) -> firing: one "firing" alert.
//   Cooldown holds the rule pending; it fires on the first evaluation after
//   the cooldown if `when` still holds.
// - firing: when `clear` holds (default: `when` does not hold — false or
//   unknown) -> one "resolved" alert, inactive.
// A rule's time t is event time: the largest timestamp of the readings
// that evaluated it (never moves back). Rules that use absent() run
// entirely on the wall clock (Clock::NowWallUs()): `for`, `cooldown` and
// their alerts' ts_us. absent(S, W) is true when no reading of S was
// applied in (now - W, now] of wall time; a sensor that never reported
// counts from when the rule set was installed. Tick() evaluates absent()
// rules (call it every second or so); readings evaluate them too, so a
// returning sensor resolves at once.
// Alerts: ts_us = the rule's time, value = the subject (left side of the
// first comparison in `when`, evaluated now; NaN when it has no value —
// an empty window, x / 0, overflow — never a stand-in number), message
// rendered from the rule's template ({value}: "n/a" then). A rule removed
// or changed while firing resolves with the value it fired with.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/event.h"
#include "common/status.h"
#include "rules/rule.h"
#include "rules/state.h"
#include "rules/window.h"

namespace sluice {
namespace rules {

struct EngineOptions {
  int64_t late_tolerance_us = 5000000;      // rules.late_tolerance
  int64_t max_future_us = 86400000000;      // rules.max_future
  size_t max_window_readings = 1000000;     // per sliding/count window
  size_t max_held_readings = 10000;         // readings waiting for the wall clock
};

struct EngineStats {
  uint64_t readings = 0;       // OnReading calls
  uint64_t accepted = 0;       // applied to windows
  uint64_t unused = 0;         // no rule reads the sensor
  uint64_t late = 0;
  uint64_t future = 0;
  uint64_t ahead = 0;          // stamped ahead of the wall clock: held
  uint64_t ahead_dropped = 0;  // held readings dropped (hold full)
  uint64_t invalid = 0;
  uint64_t bad_quality = 0;
  uint64_t refilled = 0;       // Refill() readings applied
  uint64_t evaluations = 0;
  uint64_t fired = 0;
  uint64_t resolved = 0;
  uint64_t cooldown_held = 0;  // episodes whose firing waited for cooldown
  uint64_t window_overflow = 0;
  size_t rules = 0;
  size_t windows = 0;          // distinct (sensor, window) pairs
  size_t sensors = 0;          // sensors some rule reads
  size_t firing = 0;           // rules firing now
  size_t held = 0;             // readings waiting for the wall clock now
};

// What Refill() wants: readings of `sensors` with ts >= (newest of that
// sensor) - span_us, or at least the newest `count` of each, in the order
// they were committed.
struct RefillPlan {
  std::vector<std::string> sensors;
  int64_t span_us = 0;
  size_t count = 0;
};

// What Replace() did, for the log.
struct ReplaceSummary {
  size_t kept = 0;     // rules whose definition did not change: state kept
  size_t added = 0;    // new or changed rules
  size_t removed = 0;  // rules gone or changed
  size_t windows_kept = 0;
  size_t windows_new = 0;
};

class Engine {
 public:
  Engine(Clock& clock, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Installs `rules`. A rule with the same name and definition hash as a
  // running one keeps its state; a window (sensor, window) still used keeps
  // its readings. A rule that was firing and is removed or changed gets a
  // "resolved" alert in *out. New windows start empty and take Refill().
  ReplaceSummary Replace(RuleSet rules, std::vector<Alert>* out);

  // One committed reading: updates windows, evaluates the sensor's rules,
  // appends alerts to *out in the order they happened.
  void OnReading(const Reading& reading, std::vector<Alert>* out);

  // Evaluates rules that use absent() at Clock::NowWallUs().
  void Tick(std::vector<Alert>* out);

  // Restart and reload: feeds a stored reading to windows that have not yet
  // seen a live reading (new since construction or the last Replace()),
  // without evaluating rules or alerting. Late and future readings are
  // dropped as in OnReading (lateness measured among refilled readings);
  // ahead ones are held as in OnReading (and then evaluated when due).
  void Refill(const Reading& reading);
  // Ends refilling: from now on only OnReading feeds windows.
  void FinishRefill();
  RefillPlan refill_plan() const;

  // Persistable per-rule state (see state.h). ExportState() lists every
  // rule. ImportState() restores rules whose name and hash match; a state
  // that was firing for a rule now gone or changed yields a "resolved"
  // alert (ts = wall clock, message "rule removed or changed"). Returns how
  // many states were restored. Call after Replace(), before readings.
  std::vector<RuleState> ExportState() const;
  size_t ImportState(const std::vector<RuleState>& states, std::vector<Alert>* out);
  // Increments whenever some rule changes phase: persist when it moves.
  uint64_t state_version() const { return state_version_; }

  EngineStats stats() const;
  // The installed rules in file order (for `sluice rules list`, status);
  // valid until the next Replace(). ExportState() lists them in this order.
  std::vector<const RuleDef*> rules() const;
  // The rule files of the installed set.
  const std::vector<std::string>& files() const { return set_.files; }
  const EngineOptions& options() const { return options_; }

 private:
  struct Sensor;
  struct RuleRt;
  struct Binding {
    Window* window = nullptr;
    Sensor* sensor = nullptr;
  };

  void Evaluate(RuleRt* rule, int64_t t, int64_t now_wall, std::vector<Alert>* out);
  double Run(const Expr& e, uint32_t begin, uint32_t end, const Binding* b, int64_t now_wall);
  void Emit(RuleRt* rule, const char* state, double value, int64_t ts, std::vector<Alert>* out);
  void Bind(const Expr& e, std::vector<Binding>* out, RuleRt* rule);
  // Shared checks of OnReading and Refill; returns the sensor (and the
  // wall clock in *now) or null; *ahead: null because the reading is ahead
  // of the wall clock (counted, to be held). `exact`: read the clock now.
  Sensor* Admit(const Reading& r, bool exact, int64_t* now, bool* ahead);
  // The live path after Admit: lateness, windows, evaluation.
  void Apply(Sensor* s, int64_t ts, double value, int64_t now, std::vector<Alert>* out);
  // Holds a reading that is ahead (`once`: unless the same one is held).
  void Hold(const Reading& r, bool once);
  // Applies the held readings that are no longer ahead of `now`.
  void Release(int64_t now, std::vector<Alert>* out);

  Clock& clock_;
  EngineOptions options_;
  RuleSet set_;
  std::vector<std::unique_ptr<RuleRt>> rules_;
  std::vector<RuleRt*> wall_rules_;
  // A hasher of our own: libstdc++ scans small maps keyed with std::hash
  // linearly (one string compare per entry); this always hashes.
  struct NameHash {
    size_t operator()(const std::string& s) const noexcept { return std::hash<std::string>()(s); }
  };
  std::unordered_map<std::string, std::unique_ptr<Sensor>, NameHash> sensors_;
  std::map<std::pair<std::string, WindowSpec>, std::unique_ptr<Window>> windows_;
  struct Held {
    std::string sensor;
    double value = 0;
  };
  std::multimap<int64_t, Held> held_;  // by timestamp
  std::vector<double> stack_;
  EngineStats stats_;
  uint64_t state_version_ = 0;
  int64_t wall_now_ = 0;   // last wall clock read
  int clock_reuse_ = 0;    // readings since
};

}  // namespace rules
}  // namespace sluice
