// Builds a driver from a TOML `params = {...}` literal through the builtin
// registry, the way the daemon does (common params first, then the
// driver's own, then unknown keys rejected). File name in errors: "t.toml",
// the params table on line 2.
#pragma once

#include <toml++/toml.h>

#include <memory>
#include <string>

#include "drivers/driver.h"

namespace sluice {
namespace testing {

// The shared devices of every driver MakeDriver builds in this test process,
// as if all were one daemon's sensors (sensors of one test share a device).
inline SharedDevices& TestDevices() {
  static SharedDevices devices;
  return devices;
}

inline StatusOr<std::unique_ptr<Driver>> MakeDriver(Clock& clock, const std::string& driver,
                                                    const std::string& params_toml,
                                                    const std::string& name = "s",
                                                    int64_t interval_us = 1000000,
                                                    SensorSpec* spec_out = nullptr,
                                                    SharedDevices& devices = TestDevices()) {
  DriverContext ctx{clock, devices};
  toml::table root;
  try {
    root = toml::parse("[sensor]\nparams = " + params_toml + "\n", std::string("t.toml"));
  } catch (const toml::parse_error& e) {
    return InvalidArgument(std::string("test TOML: ") + std::string(e.description()));
  }
  Params p("t.toml", name, root["sensor"]["params"].as_table(), 1, 1);
  SensorSpec spec;
  spec.name = name;
  spec.driver = driver;
  spec.interval_us = interval_us;
  p.set_driver(driver);
  SLUICE_RETURN_IF_ERROR(ApplyCommonParams(p, &spec));
  if (spec_out != nullptr) *spec_out = spec;
  return DriverRegistry::Builtin().Create(spec, p, ctx);
}

// `s` as a TOML basic string (quotes and backslashes escaped), for paths.
inline std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace testing
}  // namespace sluice
