#include "rules/state.h"

#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace sluice {
namespace rules {
namespace {

constexpr const char* kHeader = "sluice-rules-state 1";

bool ParseI64(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool ParseU64(const std::string& s, int base, uint64_t* out) {
  if (s.empty() || s[0] == '-' || s[0] == '+') return false;
  errno = 0;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, base);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool ValidRuleName(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

const char* PhaseName(Phase p) {
  switch (p) {
    case Phase::kInactive: return "inactive";
    case Phase::kPending: return "pending";
    case Phase::kFiring: return "firing";
  }
  return "?";
}

bool RuleState::operator==(const RuleState& o) const {
  return rule == o.rule && hash == o.hash && phase == o.phase &&
         pending_since_us == o.pending_since_us && firing_since_us == o.firing_since_us &&
         last_fired_us == o.last_fired_us && clock_us == o.clock_us &&
         (value == o.value || (std::isnan(value) && std::isnan(o.value))) &&
         severity == o.severity && fired == o.fired;
}

std::string EncodeRuleStates(const std::vector<RuleState>& states) {
  std::string out = kHeader;
  out += '\n';
  char buf[512];
  char value[64];
  for (const RuleState& s : states) {
    // No value (fired with none) is written as "nan".
    if (std::isfinite(s.value)) std::snprintf(value, sizeof value, "%a", s.value);
    else std::snprintf(value, sizeof value, "nan");
    std::snprintf(buf, sizeof buf, " %016" PRIx64 " %d %" PRId64 " %" PRId64 " %" PRId64
                  " %" PRId64 " %s %s %" PRIu64 "\n",
                  s.hash, static_cast<int>(s.phase), s.pending_since_us, s.firing_since_us,
                  s.last_fired_us, s.clock_us, value,
                  s.severity.empty() ? "-" : s.severity.c_str(), s.fired);
    out += s.rule;
    out += buf;
  }
  return out;
}

StatusOr<std::vector<RuleState>> DecodeRuleStates(const std::string& blob) {
  std::istringstream in(blob);
  std::string line;
  if (!std::getline(in, line) || line != kHeader) {
    return Corruption("rule state: missing \"" + std::string(kHeader) + "\" header");
  }
  std::vector<RuleState> out;
  int n = 1;
  while (std::getline(in, line)) {
    ++n;
    std::istringstream f(line);
    std::string name, hash, phase, pending, firing, last, clock, value, severity, fired, extra;
    f >> name >> hash >> phase >> pending >> firing >> last >> clock >> value >> severity >> fired;
    auto bad = [&] { return Corruption("rule state: bad line " + std::to_string(n)); };
    if (f.fail() || (f >> extra)) return bad();
    RuleState s;
    s.rule = name;
    int64_t ph;
    if (!ValidRuleName(name) || !ParseU64(hash, 16, &s.hash) || !ParseI64(phase, &ph) ||
        ph < 0 || ph > 2 || !ParseI64(pending, &s.pending_since_us) ||
        !ParseI64(firing, &s.firing_since_us) || !ParseI64(last, &s.last_fired_us) ||
        !ParseI64(clock, &s.clock_us) || !ParseU64(fired, 10, &s.fired)) {
      return bad();
    }
    s.phase = static_cast<Phase>(ph);
    char* end = nullptr;
    if (value == "nan") {
      s.value = std::nan("");
    } else {
      s.value = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !std::isfinite(s.value)) return bad();
    }
    if (severity == "-") severity.clear();
    else if (severity != "info" && severity != "warning" && severity != "critical") return bad();
    s.severity = severity;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace rules
}  // namespace sluice
