// The rules engine inside sluiced: one thread that follows the ring's
// committed rows and feeds every reading to rules::Engine, committing the
// alerts it raises back to the ring (kind=alert, kAlertPriority).
//
// Why follow committed rows (a RingReader chasing Ring::LastSeq) rather
// than a queue filled by the sink: the engine then sees exactly what was
// committed, in seq order, once — never a reading the ring refused, never
// one twice. A restart or a reload refills windows from rows <= the seq the
// engine has evaluated and goes live from the next one, so no reading is
// counted twice or skipped, and there is no second queue that could drop.
// The cost is latency: a reading reaches the engine one group commit
// (buffer.commit_interval, 20 ms) after it was submitted — still
// milliseconds, and independent of the uplinks.
//
// Persisted state: data_dir/rules.state ("seq N" then EncodeRuleStates),
// written atomically (tmp + fsync + rename) whenever Engine::state_version()
// moves, every 10 s while rows flow, and at Stop(). At start, windows are
// refilled (Engine::refill_plan) from rows <= N and rows > N are evaluated
// live again: between two saves no rule changed phase, so the replay
// reproduces the same state and neither fires nor resolves twice.
//
// Thread-safety: Start/Replace/Stop from one thread (the daemon's main
// thread); Stats() from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "buffer/ring.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "rules/engine.h"

namespace sluice {

// One installed rule as `sluice status` shows it.
struct RuleBrief {
  std::string name;
  std::string severity;           // the rule's severity
  rules::Phase phase = rules::Phase::kInactive;
  int64_t since_us = 0;           // firing: when it fired; pending: since when (0: -)
  double value = 0;               // subject value at the last firing
  uint64_t fired = 0;             // firings since the daemon started
};

struct RulesRunnerStats {
  rules::EngineStats engine;
  std::vector<RuleBrief> rules;   // in file order
  std::vector<std::string> files; // rule files loaded
  uint64_t seq = 0;              // highest seq evaluated
  uint64_t rows = 0;             // rows read (readings and alerts)
  uint64_t missed = 0;           // rows evicted before the engine read them
  uint64_t alerts_committed = 0;
  uint64_t alerts_dropped = 0;   // the ring refused them (logged)
  uint64_t state_saves = 0;
  uint64_t state_errors = 0;
};

class RulesRunner {
 public:
  RulesRunner(Ring& ring, Clock& clock, rules::EngineOptions options, std::string state_path);
  ~RulesRunner();
  RulesRunner(const RulesRunner&) = delete;
  RulesRunner& operator=(const RulesRunner&) = delete;

  // Installs `rules`, restores rules.state, refills windows from the ring
  // and starts the thread. Call after the ring opened, before sensors run.
  Status Start(rules::RuleSet rules);
  // Installs a new rule set on the rules thread (kept rules keep their
  // state and windows; new windows are refilled from the ring) and waits
  // for it, up to timeout_us.
  StatusOr<rules::ReplaceSummary> Replace(rules::RuleSet rules, int64_t timeout_us);
  // Evaluates what is committed (up to grace_us), commits the last alerts,
  // saves the state and stops the thread. Idempotent.
  void Stop(int64_t grace_us);
  RulesRunnerStats Stats() const;
  bool Running() const { return thread_.joinable() && !done_.load(); }

 private:
  void Run();
  // Feeds the rows after seq_ (one batch); true if any.
  bool Step(RingReader& reader);
  // Refills windows still filling from stored readings with seq <= upto.
  void RefillUpTo(RingReader& reader, uint64_t upto);
  void CommitAlerts();
  void SaveState(bool force);
  // Copies local_ into stats_; the rule list is rebuilt when some rule
  // changed phase or the set was replaced (`rules_changed`).
  void Publish(bool rules_changed = false);

  Ring& ring_;
  Clock& clock_;
  std::string state_path_;
  RateLimitedLog read_log_{LogLevel::kError, "rules", 10000000, clock_};
  RateLimitedLog save_log_{LogLevel::kError, "rules", 60000000, clock_};
  rules::Engine engine_;
  std::unique_ptr<RingReader> reader_;  // the thread's (Start's before)
  std::vector<Alert> alerts_;
  std::vector<StoredEvent> batch_;
  uint64_t seq_ = 0;
  uint64_t saved_version_ = 0;
  uint64_t saved_seq_ = 0;
  int64_t next_save_us_ = 0;
  RulesRunnerStats local_;  // thread's own; copied into stats_
  uint64_t published_version_ = UINT64_MAX;  // state_version() of local_.rules

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::optional<rules::RuleSet> pending_;
  uint64_t requests_ = 0, handled_ = 0;
  rules::ReplaceSummary last_summary_;
  bool stop_ = false;
  uint64_t stop_target_ = 0;
  int64_t stop_deadline_us_ = 0;
  RulesRunnerStats stats_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace sluice
