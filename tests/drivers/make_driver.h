// Builds a driver the way sluiced does: `params` is the TOML inline table
// written after `params = ` in a [[sensor]] of "file.toml" (line 2), common
// params applied, then DriverRegistry::Builtin().Create().
#pragma once

#include <toml++/toml.h>

#include <memory>
#include <string>

#include "drivers/driver.h"

namespace sluice {

inline StatusOr<std::unique_ptr<Driver>> MakeDriver(const std::string& params, SensorSpec spec,
                                                    Clock& clock) {
  toml::table root = toml::parse("[sensor]\nparams = " + params + "\n", std::string("file.toml"));
  Params p("file.toml", spec.name, root["sensor"]["params"].as_table(), 2, 1);
  Status st = ApplyCommonParams(p, &spec);
  if (!st.ok()) return st;
  DriverContext ctx{clock};
  return DriverRegistry::Builtin().Create(spec, p, ctx);
}

inline SensorSpec Spec(const std::string& name, const std::string& driver,
                       int64_t interval_us = 1000000) {
  SensorSpec s;
  s.name = name;
  s.driver = driver;
  s.interval_us = interval_us;
  return s;
}

// A TOML basic string holding `s` (paths in tests need no escapes beyond these).
inline std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace sluice
