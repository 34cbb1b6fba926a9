#include "rules/engine.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <set>

namespace sluice {
namespace rules {
namespace {

constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();
constexpr int64_t kMaxTs = int64_t{1} << 62;
constexpr int kClockReuse = 64;

double Finite(double v) { return std::isfinite(v) ? v : kNoValue; }
double Bool(bool b) { return b ? 1.0 : 0.0; }

// t - since, saturated (persisted state may hold anything).
int64_t Elapsed(int64_t t, int64_t since) {
  int64_t r;
  if (__builtin_sub_overflow(t, since, &r)) return since < 0 ? std::numeric_limits<int64_t>::max()
                                                            : std::numeric_limits<int64_t>::min();
  return r;
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? std::numeric_limits<int64_t>::max()
                                                     : std::numeric_limits<int64_t>::min();
  return r;
}

}  // namespace

struct Engine::Sensor {
  bool seen = false;            // some reading applied (live or refill)
  int64_t newest_ts = 0;
  double latest = kNoValue;     // value at newest_ts
  int64_t last_seen_wall = 0;   // for absent()
  bool wall = false;             // some absent() rule reads it
  bool refill_seen = false;
  int64_t refill_newest = 0;
  std::vector<Window*> windows;
  std::vector<RuleRt*> rules;
};

struct Engine::RuleRt {
  RuleDef def;
  std::vector<Binding> when;
  std::vector<Binding> clear;
  RuleState st;
  bool wall = false;  // uses absent(): runs on the wall clock
  bool held = false;  // this episode already counted as cooldown-held
};

Engine::Engine(Clock& clock, EngineOptions options) : clock_(clock), options_(options) {
  if (options_.late_tolerance_us < 0) options_.late_tolerance_us = 0;
  if (options_.max_future_us < 0) options_.max_future_us = 0;
}

Engine::~Engine() = default;

void Engine::Bind(const Expr& e, std::vector<Binding>* out, RuleRt* rule) {
  out->clear();
  for (const Ref& ref : e.refs) {
    Binding b;
    auto& sensor = sensors_[ref.sensor];
    b.sensor = sensor.get();
    if (ref.windowed) b.window = windows_.at({ref.sensor, ref.window}).get();
    out->push_back(b);
    if (rule->wall) sensor->wall = true;
    if (std::find(sensor->rules.begin(), sensor->rules.end(), rule) == sensor->rules.end()) {
      sensor->rules.push_back(rule);
    }
  }
  for (const Node& n : e.program) {
    if (n.op == Op::kWindow) (*out)[n.ref].window->Track(n.func);
  }
  if (stack_.size() < e.max_stack) stack_.resize(e.max_stack);
}

ReplaceSummary Engine::Replace(RuleSet set, std::vector<Alert>* out) {
  ReplaceSummary sum;
  const int64_t now = clock_.NowWallUs();
  // Windows: keep those still used, create the new ones.
  decltype(windows_) windows;
  auto sensors = std::move(sensors_);
  sensors_.clear();
  auto need = [&](const Expr& e) {
    for (const Ref& ref : e.refs) {
      auto& s = sensors_[ref.sensor];
      if (!s) {
        auto old = sensors.find(ref.sensor);
        if (old != sensors.end()) {
          s = std::move(old->second);
          s->windows.clear();
          s->rules.clear();
          s->wall = false;
        } else {
          s = std::make_unique<Sensor>();
          s->last_seen_wall = now;
        }
      }
      if (!ref.windowed) continue;
      auto key = std::make_pair(ref.sensor, ref.window);
      if (windows.count(key)) continue;
      auto old = windows_.find(key);
      if (old != windows_.end()) {
        windows[key] = std::move(old->second);
        ++sum.windows_kept;
      } else {
        windows[key] = MakeWindow(ref.window, options_.max_window_readings);
        ++sum.windows_new;
      }
      s->windows.push_back(windows[key].get());
    }
  };
  for (const RuleDef& def : set.rules) {
    need(def.when);
    if (def.has_clear) need(def.clear);
  }
  windows_ = std::move(windows);

  // Rules: transfer state by name and hash.
  std::unordered_map<std::string, RuleRt*> old;
  for (auto& r : rules_) old[r->def.name] = r.get();
  auto previous = std::move(rules_);
  rules_.clear();
  wall_rules_.clear();
  for (RuleDef& def : set.rules) {
    auto rt = std::make_unique<RuleRt>();
    auto it = old.find(def.name);
    if (it != old.end() && it->second->def.hash == def.hash) {
      rt->st = it->second->st;
      rt->held = it->second->held;
      it->second = nullptr;  // carried over
      ++sum.kept;
    } else {
      ++sum.added;
      rt->st.rule = def.name;
      rt->st.hash = def.hash;
    }
    rt->def = std::move(def);
    rt->wall = rt->def.when.uses_absent || (rt->def.has_clear && rt->def.clear.uses_absent);
    Bind(rt->def.when, &rt->when, rt.get());
    if (rt->def.has_clear) Bind(rt->def.clear, &rt->clear, rt.get());
    if (rt->wall) wall_rules_.push_back(rt.get());
    rules_.push_back(std::move(rt));
  }
  for (auto& prev : previous) {
    RuleRt* gone = prev.get();
    if (old[gone->def.name] == nullptr) continue;
    ++sum.removed;
    if (gone->st.phase == Phase::kFiring) {
      // Its windows may be gone: report the value it fired with.
      Emit(gone, "resolved", gone->st.value, gone->wall ? now : gone->st.clock_us, out);
      ++state_version_;
    }
  }
  set.rules.clear();
  set_ = std::move(set);
  return sum;
}

Engine::Sensor* Engine::Admit(const Reading& r, bool exact, int64_t* now, bool* ahead) {
  *ahead = false;
  if (!std::isfinite(r.value) || r.ts_us < 0 || r.ts_us >= kMaxTs) {
    ++stats_.invalid;
    return nullptr;
  }
  if (r.quality == Quality::kBad) {
    ++stats_.bad_quality;
    return nullptr;
  }
  auto it = sensors_.find(r.sensor);
  if (it == sensors_.end()) {
    ++stats_.unused;
    return nullptr;
  }
  Sensor* s = it->second.get();
  // Reading the wall clock costs as much as a few windows: sensors that no
  // absent() rule reads use a value at most kClockReuse readings old, and
  // the clock is read again before rejecting a reading as future.
  bool fresh = exact || s->wall || ++clock_reuse_ >= kClockReuse;
  if (fresh) {
    wall_now_ = clock_.NowWallUs();
    clock_reuse_ = 0;
  }
  // Past a limit by the cached clock: read it again before deciding.
  auto beyond = [&](int64_t margin) {
    if (r.ts_us <= SaturatingAdd(wall_now_, margin)) return false;
    if (!fresh) {
      wall_now_ = clock_.NowWallUs();
      clock_reuse_ = 0;
      fresh = true;
    }
    return r.ts_us > SaturatingAdd(wall_now_, margin);
  };
  if (beyond(options_.max_future_us)) {
    ++stats_.future;
    return nullptr;
  }
  if (beyond(options_.late_tolerance_us)) {
    ++stats_.ahead;
    *ahead = true;
    return nullptr;
  }
  *now = wall_now_;
  return s;
}

void Engine::Hold(const Reading& r, bool once) {
  if (once) {
    auto range = held_.equal_range(r.ts_us);
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second.sensor == r.sensor && it->second.value == r.value) return;
    }
  }
  if (held_.size() >= options_.max_held_readings) {
    ++stats_.ahead_dropped;
    if (held_.empty()) return;
    auto last = std::prev(held_.end());
    if (last->first <= r.ts_us) return;  // the new one is furthest ahead
    held_.erase(last);
  }
  held_.emplace(r.ts_us, Held{r.sensor, r.value});
}

void Engine::Release(int64_t now, std::vector<Alert>* out) {
  const int64_t due = SaturatingAdd(now, options_.late_tolerance_us);
  while (!held_.empty() && held_.begin()->first <= due) {
    auto node = held_.extract(held_.begin());
    auto it = sensors_.find(node.mapped().sensor);
    if (it == sensors_.end()) {
      ++stats_.unused;  // its rules were removed while it waited
      continue;
    }
    Apply(it->second.get(), node.key(), node.mapped().value, now, out);
  }
}

void Engine::OnReading(const Reading& r, std::vector<Alert>* out) {
  ++stats_.readings;
  int64_t now;
  bool ahead;
  Sensor* s = Admit(r, false, &now, &ahead);
  if (!held_.empty()) Release(wall_now_, out);
  if (ahead) Hold(r, false);
  if (!s) return;
  Apply(s, r.ts_us, r.value, now, out);
}

void Engine::Apply(Sensor* s, int64_t ts, double value, int64_t now, std::vector<Alert>* out) {
  if (s->seen && ts < s->newest_ts - options_.late_tolerance_us) {
    ++stats_.late;
    return;
  }
  ++stats_.accepted;
  for (Window* w : s->windows) {
    w->filling = false;
    w->Add(ts, value);
  }
  if (!s->seen || ts >= s->newest_ts) {
    s->seen = true;
    s->newest_ts = ts;
    s->latest = value;
  }
  if (now > s->last_seen_wall) s->last_seen_wall = now;
  for (RuleRt* rule : s->rules) Evaluate(rule, rule->wall ? now : ts, now, out);
}

void Engine::Tick(std::vector<Alert>* out) {
  const int64_t now = clock_.NowWallUs();
  if (!held_.empty()) Release(now, out);
  for (RuleRt* rule : wall_rules_) Evaluate(rule, now, now, out);
}

void Engine::Refill(const Reading& r) {
  int64_t now;
  bool ahead;
  Sensor* s = Admit(r, true, &now, &ahead);
  if (ahead) Hold(r, true);
  if (!s) return;
  if (s->refill_seen && r.ts_us < s->refill_newest - options_.late_tolerance_us) {
    ++stats_.late;
    return;
  }
  if (!s->refill_seen || r.ts_us > s->refill_newest) s->refill_newest = r.ts_us;
  s->refill_seen = true;
  bool any = false;
  for (Window* w : s->windows) {
    if (!w->filling) continue;
    w->Add(r.ts_us, r.value);
    any = true;
  }
  if (!s->seen || r.ts_us >= s->newest_ts) {
    s->seen = true;
    s->newest_ts = r.ts_us;
    s->latest = r.value;
  }
  const int64_t seen_at = std::min(r.ts_us, now);
  if (seen_at > s->last_seen_wall) s->last_seen_wall = seen_at;
  if (any) ++stats_.refilled;
}

void Engine::FinishRefill() {
  for (auto& w : windows_) w.second->filling = false;
  for (auto& s : sensors_) s.second->refill_seen = false;
}

RefillPlan Engine::refill_plan() const {
  RefillPlan plan;
  std::set<std::string> sensors;
  for (const auto& w : windows_) {
    if (!w.second->filling) continue;
    sensors.insert(w.first.first);
    const WindowSpec& spec = w.second->spec();
    if (spec.kind == WindowKind::kSliding) {
      plan.span_us = std::max(plan.span_us, spec.length);
    } else if (spec.kind == WindowKind::kTumbling) {
      plan.span_us = std::max(plan.span_us, SaturatingAdd(spec.length, spec.length));
    } else {
      plan.count = std::max(plan.count, static_cast<size_t>(spec.length));
    }
  }
  plan.sensors.assign(sensors.begin(), sensors.end());
  if (!plan.sensors.empty()) {
    plan.span_us = SaturatingAdd(plan.span_us, options_.late_tolerance_us);
  }
  return plan;
}

double Engine::Run(const Expr& e, uint32_t begin, uint32_t end, const Binding* b,
                   int64_t now_wall) {
  double* st = stack_.data();
  size_t sp = 0;
  const Node* prog = e.program.data();
  for (uint32_t i = begin; i < end; ++i) {
    const Node& n = prog[i];
    switch (n.op) {
      case Op::kConst: st[sp++] = n.number; continue;
      case Op::kLatest: st[sp++] = b[n.ref].sensor->latest; continue;
      case Op::kWindow: st[sp++] = b[n.ref].window->Value(n.func); continue;
      case Op::kAbsent:
        st[sp++] = Bool(static_cast<double>(now_wall) -
                            static_cast<double>(b[n.ref].sensor->last_seen_wall) >= n.number);
        continue;
      case Op::kNeg: st[sp - 1] = -st[sp - 1]; continue;
      case Op::kNot: st[sp - 1] = std::isnan(st[sp - 1]) ? kNoValue : 1.0 - st[sp - 1]; continue;
      default: break;
    }
    const double r = st[--sp];
    double& l = st[sp - 1];
    const bool unknown = std::isnan(l) || std::isnan(r);
    switch (n.op) {
      case Op::kAdd: l = Finite(l + r); break;
      case Op::kSub: l = Finite(l - r); break;
      case Op::kMul: l = Finite(l * r); break;
      case Op::kDiv: l = r == 0 ? kNoValue : Finite(l / r); break;
      case Op::kLt: l = unknown ? kNoValue : Bool(l < r); break;
      case Op::kLe: l = unknown ? kNoValue : Bool(l <= r); break;
      case Op::kGt: l = unknown ? kNoValue : Bool(l > r); break;
      case Op::kGe: l = unknown ? kNoValue : Bool(l >= r); break;
      case Op::kEq: l = unknown ? kNoValue : Bool(l == r); break;
      case Op::kNe: l = unknown ? kNoValue : Bool(l != r); break;
      case Op::kAnd: l = (l == 0 || r == 0) ? 0.0 : unknown ? kNoValue : 1.0; break;
      case Op::kOr: l = (l == 1 || r == 1) ? 1.0 : unknown ? kNoValue : 0.0; break;
      default: break;
    }
  }
  return sp ? st[0] : kNoValue;
}

void Engine::Emit(RuleRt* rule, const char* state, double value, int64_t ts,
                  std::vector<Alert>* out) {
  if (!std::isfinite(value)) value = kNoValue;
  Alert a;
  a.rule = rule->def.name;
  a.state = state;
  a.severity = rule->def.severity;
  a.ts_us = ts;
  a.value = value;
  a.message = RenderMessage(rule->def, state, value);
  a.labels = rule->def.labels;
  if (state[0] == 'f') ++stats_.fired;
  else ++stats_.resolved;
  if (out) out->push_back(std::move(a));
}

void Engine::Evaluate(RuleRt* rule, int64_t t, int64_t now_wall, std::vector<Alert>* out) {
  ++stats_.evaluations;
  RuleState& st = rule->st;
  if (t < st.clock_us) t = st.clock_us;
  st.clock_us = t;
  const RuleDef& def = rule->def;
  const Expr& when = def.when;
  const Binding* wb = rule->when.data();
  if (st.phase == Phase::kFiring) {
    bool clear;
    if (def.has_clear) {
      clear = Run(def.clear, 0, static_cast<uint32_t>(def.clear.program.size()),
                  rule->clear.data(), now_wall) == 1.0;
    } else {
      clear = Run(when, 0, static_cast<uint32_t>(when.program.size()), wb, now_wall) != 1.0;
    }
    if (!clear) return;
    st.phase = Phase::kInactive;
    st.pending_since_us = st.firing_since_us = kNever;
    rule->held = false;
    ++state_version_;
    Emit(rule, "resolved", Run(when, when.subject_begin, when.subject_end, wb, now_wall), t, out);
    return;
  }
  const bool holds =
      Run(when, 0, static_cast<uint32_t>(when.program.size()), wb, now_wall) == 1.0;
  if (!holds) {
    if (st.phase == Phase::kPending) {
      st.phase = Phase::kInactive;
      st.pending_since_us = kNever;
      rule->held = false;
      ++state_version_;
    }
    return;
  }
  if (st.phase == Phase::kInactive) {
    st.phase = Phase::kPending;
    st.pending_since_us = t;
    ++state_version_;
  }
  if (Elapsed(t, st.pending_since_us) < def.for_us) return;
  if (st.last_fired_us != kNever && Elapsed(t, st.last_fired_us) < def.cooldown_us) {
    if (!rule->held) {
      rule->held = true;
      ++stats_.cooldown_held;
    }
    return;
  }
  const double value = Run(when, when.subject_begin, when.subject_end, wb, now_wall);
  st.phase = Phase::kFiring;
  st.firing_since_us = t;
  st.last_fired_us = t;
  st.value = std::isfinite(value) ? value : kNoValue;
  st.severity = def.severity;
  ++st.fired;
  rule->held = false;
  ++state_version_;
  Emit(rule, "firing", value, t, out);
}

std::vector<RuleState> Engine::ExportState() const {
  std::vector<RuleState> out;
  out.reserve(rules_.size());
  for (const auto& r : rules_) out.push_back(r->st);
  return out;
}

size_t Engine::ImportState(const std::vector<RuleState>& states, std::vector<Alert>* out) {
  size_t restored = 0;
  const int64_t now = clock_.NowWallUs();
  for (const RuleState& s : states) {
    RuleRt* match = nullptr;
    for (auto& r : rules_) {
      if (r->def.name == s.rule) match = r.get();
    }
    if (match && match->def.hash == s.hash) {
      match->st = s;
      match->held = false;
      ++restored;
      ++state_version_;
      continue;
    }
    if (s.phase != Phase::kFiring) continue;
    RuleRt orphan;
    orphan.def.name = s.rule;
    orphan.def.severity = s.severity.empty() ? "warning" : s.severity;
    MessagePart text;
    text.text = "rule removed or changed";
    orphan.def.message_parts.push_back(text);
    orphan.st.value = s.value;
    Emit(&orphan, "resolved", s.value, now, out);
    ++state_version_;
  }
  return restored;
}

std::vector<const RuleDef*> Engine::rules() const {
  std::vector<const RuleDef*> out;
  out.reserve(rules_.size());
  for (const auto& r : rules_) out.push_back(&r->def);
  return out;
}

EngineStats Engine::stats() const {
  EngineStats s = stats_;
  s.rules = rules_.size();
  s.windows = windows_.size();
  s.sensors = sensors_.size();
  s.window_overflow = 0;
  for (const auto& w : windows_) s.window_overflow += w.second->overflowed();
  s.firing = 0;
  for (const auto& r : rules_) s.firing += r->st.phase == Phase::kFiring;
  s.held = held_.size();
  return s;
}

}  // namespace rules
}  // namespace sluice
