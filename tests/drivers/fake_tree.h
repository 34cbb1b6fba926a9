// A fake /sys tree in a temp dir for the file-based driver tests, and a
// way to make a driver from a TOML params table as sluiced does.
#pragma once

#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "common/clock.h"
#include "drivers/driver.h"
#include "tests/support/support.h"

namespace sluice {
namespace testing {

class FakeTree {
 public:
  const std::string& root() const { return dir_.path(); }
  std::string Path(const std::string& rel) const { return dir_.path() + "/" + rel; }

  // Writes `content` to root/rel, creating parent directories.
  void Put(const std::string& rel, const std::string& content) {
    MakeParents(rel);
    REQUIRE(WriteFile(Path(rel), content));
  }
  void Remove(const std::string& rel) { REQUIRE(RemoveRecursively(Path(rel))); }
  void Rename(const std::string& from, const std::string& to) {
    MakeParents(to);
    REQUIRE(std::rename(Path(from).c_str(), Path(to).c_str()) == 0);
  }

 private:
  void MakeParents(const std::string& rel) {
    for (size_t i = rel.find('/'); i != std::string::npos; i = rel.find('/', i + 1)) {
      mkdir(Path(rel.substr(0, i)).c_str(), 0755);
    }
  }
  TempDir dir_;
};

// One Sample() that must succeed.
inline double SampleValue(Driver& d) {
  auto v = d.Sample(0);
  INFO(v.status().message());
  REQUIRE(v.ok());
  return *v;
}

// Makes `driver` from `params_toml` (the inside of `params = {...}`) the way
// sluiced does, with sysfs_root = `sysfs_root`. Errors as from the registry.
inline StatusOr<std::unique_ptr<Driver>> MakeDriver(const std::string& driver,
                                                    const std::string& params_toml,
                                                    const std::string& sysfs_root,
                                                    SensorSpec* spec_out = nullptr) {
  static FakeClock clock;
  toml::table doc =
      toml::parse("[sensor]\nparams = { " + params_toml + " }\n", std::string_view("sluice.toml"));
  Params params("sluice.toml", "s", doc["sensor"]["params"].as_table(), 1, 1);
  SensorSpec spec;
  spec.name = "s";
  spec.driver = driver;
  Status st = ApplyCommonParams(params, &spec);
  if (!st.ok()) return st;
  SharedDevices devices;
  DriverContext ctx{clock, devices};
  ctx.sysfs_root = sysfs_root;
  if (spec_out != nullptr) *spec_out = spec;
  return DriverRegistry::Builtin().Create(spec, params, ctx);
}

}  // namespace testing
}  // namespace sluice
