// A rule's persistable alert state, so a restart neither fires nor resolves
// an episode twice. The daemon stores EncodeRuleStates() (a few hundred
// bytes per hundred rules) whenever Engine::state_version() moves, ideally
// in the same transaction as the alerts that moved it.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice {
namespace rules {

enum class Phase : uint8_t { kInactive = 0, kPending = 1, kFiring = 2 };
const char* PhaseName(Phase p);  // "inactive", "pending", "firing"

constexpr int64_t kNever = std::numeric_limits<int64_t>::min();

struct RuleState {
  std::string rule;
  uint64_t hash = 0;              // RuleDef::hash it belongs to
  Phase phase = Phase::kInactive;
  int64_t pending_since_us = kNever;  // pending or firing: when `when` began to hold
  int64_t firing_since_us = kNever;   // firing: when it fired
  int64_t last_fired_us = kNever;     // for cooldown
  int64_t clock_us = kNever;          // the rule's time (never moves back)
  double value = 0;                   // subject value at the last firing (NaN: none)
  std::string severity;               // of the last firing
  uint64_t fired = 0;                 // firings since the engine started

  bool operator==(const RuleState& o) const;
};

// One line per rule after a version line; rule names never hold spaces.
std::string EncodeRuleStates(const std::vector<RuleState>& states);
// Rejects anything EncodeRuleStates could not have written.
StatusOr<std::vector<RuleState>> DecodeRuleStates(const std::string& blob);

}  // namespace rules
}  // namespace sluice
