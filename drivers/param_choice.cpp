#include "drivers/param_choice.h"

namespace sluice {

StatusOr<int> ParamChoice(Params& params, const std::string& key,
                          const std::vector<std::string>& names, int def) {
  StatusOr<std::string> v = params.String(key, "");
  if (!v.ok()) return v.status();
  if (!params.Has(key)) return def;
  std::string list;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == *v) return static_cast<int>(i);
    if (!list.empty()) list += ", ";
    list += names[i];
  }
  return params.ErrorAt(key, "must be one of " + list + " (got \"" + *v + "\")");
}

StatusOr<int64_t> ParamIntRange(Params& params, const std::string& key, int64_t def, int64_t lo,
                                int64_t hi) {
  StatusOr<int64_t> v = params.Integer(key, def);
  if (!v.ok()) return v.status();
  if (*v < lo || *v > hi) {
    return params.ErrorAt(key, "must be between " + std::to_string(lo) + " and " +
                                   std::to_string(hi) + " (got " + std::to_string(*v) + ")");
  }
  return *v;
}

StatusOr<std::string> ParamOneOfKeys(Params& params, const std::vector<std::string>& keys) {
  std::string found;
  for (const std::string& k : keys) {
    if (!params.Has(k)) continue;
    if (!found.empty()) {
      return params.ErrorAt(k, "cannot be given together with \"" + found + "\"");
    }
    found = k;
  }
  return found;
}

}  // namespace sluice
