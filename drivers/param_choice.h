// Small typed helpers on top of Params for drivers with enumerated and
// ranged params. Errors name FILE:LINE:COL like every Params getter.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "drivers/params.h"

namespace sluice {

// The index in `names` of the string param `key`, or `def` when absent.
// Error: `must be one of a, b, c (got "x")`.
StatusOr<int> ParamChoice(Params& params, const std::string& key,
                          const std::vector<std::string>& names, int def);

// An integer param within [lo, hi], or `def` when absent.
StatusOr<int64_t> ParamIntRange(Params& params, const std::string& key, int64_t def, int64_t lo,
                                int64_t hi);

// The one of `keys` that is present (or "" if none); an error naming the
// second one when more than one is given.
StatusOr<std::string> ParamOneOfKeys(Params& params, const std::vector<std::string>& keys);

}  // namespace sluice
