#include "agent/daemon/rules_runner.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "agent/payload/stored_reading.h"
#include "buffer/codec.h"
#include "common/fs.h"
#include "common/log.h"

namespace sluice {
namespace {

constexpr int64_t kTickUs = 1000000;
constexpr int64_t kSaveEveryUs = 10000000;
constexpr size_t kBatch = 1024;

// "seq N\n" + EncodeRuleStates(...).
bool ParseStateFile(const std::string& text, uint64_t* seq, std::vector<rules::RuleState>* out,
                    std::string* error) {
  size_t nl = text.find('\n');
  if (nl == std::string::npos || text.compare(0, 4, "seq ") != 0) {
    *error = "no seq line";
    return false;
  }
  char* end = nullptr;
  std::string num = text.substr(4, nl - 4);
  errno = 0;
  unsigned long long v = std::strtoull(num.c_str(), &end, 10);
  if (errno != 0 || num.empty() || *end != '\0') {
    *error = "bad seq line";
    return false;
  }
  auto states = rules::DecodeRuleStates(text.substr(nl + 1));
  if (!states.ok()) {
    *error = states.status().message();
    return false;
  }
  *seq = v;
  *out = std::move(*states);
  return true;
}

}  // namespace

RulesRunner::RulesRunner(Ring& ring, Clock& clock, rules::EngineOptions options,
                         std::string state_path)
    : ring_(ring), clock_(clock), state_path_(std::move(state_path)), engine_(clock, options) {}

RulesRunner::~RulesRunner() { Stop(0); }

Status RulesRunner::Start(rules::RuleSet set) {
  auto reader = ring_.NewReader();
  if (!reader.ok()) return reader.status();
  reader_ = std::move(*reader);
  rules::ReplaceSummary sum = engine_.Replace(std::move(set), &alerts_);
  uint64_t last = ring_.LastSeq();
  uint64_t from = last;
  std::ifstream in(state_path_);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    uint64_t seq = 0;
    std::vector<rules::RuleState> states;
    std::string error;
    if (!ParseStateFile(ss.str(), &seq, &states, &error)) {
      LogWarn("rules", state_path_ + ": ignored (" + error + "); rules start inactive");
    } else {
      size_t restored = engine_.ImportState(states, &alerts_);
      from = std::min(seq, last);
      LogInfo("rules", "restored the state of " + std::to_string(restored) + " of " +
                           std::to_string(sum.added) + " rules from " + state_path_ +
                           " (evaluated up to seq " + std::to_string(seq) + ")");
    }
  }
  RefillUpTo(*reader_, from);
  seq_ = from;
  local_.seq = seq_;
  CommitAlerts();
  saved_version_ = engine_.state_version() + 1;  // force the first save
  SaveState(true);
  if (last > from) {
    LogInfo("rules", "re-evaluating seq " + std::to_string(from + 1) + ".." +
                         std::to_string(last) + " (committed after the last saved state)");
  }
  Publish(true);
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void RulesRunner::RefillUpTo(RingReader& reader, uint64_t upto) {
  rules::RefillPlan plan = engine_.refill_plan();
  if (plan.sensors.empty() || upto == 0) {
    engine_.FinishRefill();
    return;
  }
  struct Item {
    uint64_t seq;
    Reading r;
  };
  struct PerSensor {
    std::deque<Item> items;
    int64_t newest = INT64_MIN;
  };
  std::unordered_map<std::string, PerSensor> want;
  for (const std::string& s : plan.sensors) want[s];
  // Readings stamped ahead of the wall clock go to the engine to be held
  // again; they must not pull the span ahead of the others.
  const int64_t ahead_from = clock_.NowWallUs() + engine_.options().late_tolerance_us;
  uint64_t after = 0;
  bool more = true;
  while (more) {
    batch_.clear();
    Status st = reader.ReadAfter(after, 4096, &batch_);
    if (!st.ok()) {
      LogError("rules", "refill: " + st.message());
      break;
    }
    if (batch_.empty()) break;
    for (const StoredEvent& e : batch_) {
      if (e.seq > upto) {
        more = false;
        break;
      }
      after = e.seq;
      if (e.kind != static_cast<int>(EventKind::kReading)) continue;
      auto it = want.find(e.sensor);
      if (it == want.end()) continue;
      Item item{e.seq, {}};
      if (!DecodeStoredReading(e, &item.r)) continue;
      if (item.r.ts_us > ahead_from) {
        engine_.Refill(item.r);
        continue;
      }
      PerSensor& ps = it->second;
      ps.newest = std::max(ps.newest, item.r.ts_us);
      ps.items.push_back(std::move(item));
      // Keep what the plan asks for: the newest `count`, and everything
      // within span of the newest timestamp.
      while (ps.items.size() > plan.count &&
             ps.items.front().r.ts_us < ps.newest - plan.span_us) {
        ps.items.pop_front();
      }
    }
  }
  std::vector<Item> all;
  for (auto& kv : want) {
    for (Item& i : kv.second.items) all.push_back(std::move(i));
  }
  std::sort(all.begin(), all.end(), [](const Item& a, const Item& b) { return a.seq < b.seq; });
  for (const Item& i : all) engine_.Refill(i.r);
  engine_.FinishRefill();
  if (!all.empty()) {
    LogInfo("rules", "refilled windows with " + std::to_string(all.size()) +
                         " stored readings of " + std::to_string(plan.sensors.size()) +
                         " sensors");
  }
}

bool RulesRunner::Step(RingReader& reader) {
  batch_.clear();
  Status st = reader.ReadAfter(seq_, kBatch, &batch_);
  if (!st.ok()) {
    read_log_.Log("reading the buffer: " + st.message());
    return false;
  }
  if (batch_.empty()) {
    uint64_t last = ring_.LastSeq();
    if (last > seq_) {  // rows evicted before the engine read them
      local_.missed += last - seq_;
      seq_ = last;
    }
    return false;
  }
  Reading r;
  for (const StoredEvent& e : batch_) {
    if (e.seq > seq_ + 1) local_.missed += e.seq - seq_ - 1;
    seq_ = e.seq;
    ++local_.rows;
    if (DecodeStoredReading(e, &r)) engine_.OnReading(r, &alerts_);
  }
  return true;
}

void RulesRunner::CommitAlerts() {
  for (Alert& a : alerts_) {
    LogInfo("rules", a.rule + " " + a.state + " (" + a.severity + ", value " +
                         rules::FormatValue(a.value) + "): " + a.message);
    Record rec;
    rec.kind = static_cast<int>(EventKind::kAlert);
    rec.priority = kAlertPriority;
    rec.ts_us = a.ts_us;
    rec.body = EncodeAlert(a);
    rec.sensor = a.rule;
    Status st = ring_.Append(std::move(rec), 1000000);
    if (st.ok()) {
      ++local_.alerts_committed;
    } else {
      ++local_.alerts_dropped;
      ring_.CountDropped(1);
      LogError("rules", "alert " + a.rule + " " + a.state + " not committed: " + st.message());
    }
  }
  alerts_.clear();
}

void RulesRunner::SaveState(bool force) {
  int64_t now = clock_.NowMonotonicUs();
  bool changed = engine_.state_version() != saved_version_;
  bool periodic = seq_ != saved_seq_ && now >= next_save_us_;
  if (!force && !changed && !periodic) return;
  std::string text = "seq " + std::to_string(seq_) + "\n" +
                     rules::EncodeRuleStates(engine_.ExportState());
  Status st = WriteFileAtomic(DirName(state_path_), state_path_, text, 0640);
  if (!st.ok()) {
    ++local_.state_errors;
    save_log_.Log("saving the state: " + st.message());
    return;
  }
  ++local_.state_saves;
  saved_version_ = engine_.state_version();
  saved_seq_ = seq_;
  next_save_us_ = now + kSaveEveryUs;
}

void RulesRunner::Publish(bool rules_changed) {
  local_.engine = engine_.stats();
  local_.seq = seq_;
  if (rules_changed || engine_.state_version() != published_version_) {
    published_version_ = engine_.state_version();
    std::vector<const rules::RuleDef*> defs = engine_.rules();
    std::vector<rules::RuleState> states = engine_.ExportState();
    local_.rules.clear();
    for (size_t i = 0; i < defs.size(); ++i) {
      RuleBrief b;
      b.name = defs[i]->name;
      b.severity = defs[i]->severity;
      if (i < states.size() && states[i].rule == b.name) {
        const rules::RuleState& st = states[i];
        b.phase = st.phase;
        int64_t since = st.phase == rules::Phase::kFiring    ? st.firing_since_us
                        : st.phase == rules::Phase::kPending ? st.pending_since_us
                                                             : rules::kNever;
        b.since_us = since == rules::kNever ? 0 : since;
        b.value = st.value;
        b.fired = st.fired;
      }
      local_.rules.push_back(std::move(b));
    }
    local_.files = engine_.files();
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = local_;
}

void RulesRunner::Run() {
  int64_t next_tick = clock_.NowMonotonicUs() + kTickUs;
  for (;;) {
    std::optional<rules::RuleSet> replace;
    bool stopping = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pending_) {
        replace = std::move(pending_);
        pending_.reset();
      }
      if (stop_) {
        stopping = true;
        if (seq_ >= stop_target_ || clock_.NowMonotonicUs() >= stop_deadline_us_) break;
      }
    }
    if (replace) {
      rules::ReplaceSummary sum = engine_.Replace(std::move(*replace), &alerts_);
      RefillUpTo(*reader_, seq_);
      CommitAlerts();
      SaveState(true);
      Publish(true);
      std::lock_guard<std::mutex> lock(mu_);
      last_summary_ = sum;
      ++handled_;
      cv_.notify_all();
    }
    bool fed = false;
    if (ring_.LastSeq() > seq_) {
      fed = Step(*reader_);
    } else if (!stopping) {
      ring_.WaitForCommit(seq_, 100000);
      fed = Step(*reader_);
    }
    int64_t now = clock_.NowMonotonicUs();
    bool ticked = now >= next_tick;
    if (ticked) {
      engine_.Tick(&alerts_);
      next_tick = now + kTickUs;
    }
    CommitAlerts();
    SaveState(false);
    if (fed || ticked) Publish();
  }
  CommitAlerts();
  SaveState(true);
  Publish();
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
  cv_.notify_all();
}

StatusOr<rules::ReplaceSummary> RulesRunner::Replace(rules::RuleSet set, int64_t timeout_us) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!thread_.joinable() || stop_) return Unavailable("the rules engine is not running");
  pending_ = std::move(set);
  uint64_t want = ++requests_;
  if (!cv_.wait_for(lock, std::chrono::microseconds(timeout_us),
                    [&] { return handled_ >= want || done_.load(); })) {
    return Unavailable("the rules thread did not take the new rules in time");
  }
  if (handled_ < want) return Unavailable("the rules engine stopped");
  return last_summary_;
}

void RulesRunner::Stop(int64_t grace_us) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_.joinable()) return;
    stop_ = true;
    stop_target_ = ring_.LastSeq();
    stop_deadline_us_ = clock_.NowMonotonicUs() + grace_us;
  }
  thread_.join();
  reader_.reset();
}

RulesRunnerStats RulesRunner::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace sluice
