#include "drivers/sysfs.h"

#include "drivers/sysfs_files.h"

namespace sluice {

StatusOr<double> SysfsDriver::Sample(int64_t /*wall_us*/) { return ReadNumber(path_); }

StatusOr<std::unique_ptr<Driver>> CreateSysfsDriver(const SensorSpec& /*spec*/, Params& params,
                                                    DriverContext& ctx) {
  StatusOr<std::string> path = params.RequiredString("path");
  if (!path.ok()) return path.status();
  if (path->empty() || (*path)[0] != '/') {
    return params.ErrorAt("path", "must be an absolute path, got \"" + *path + "\"");
  }
  std::string resolved = *path;
  if (resolved.compare(0, 5, "/sys/") == 0) resolved = ctx.sysfs_root + resolved.substr(4);
  return std::unique_ptr<Driver>(new SysfsDriver(resolved));
}

}  // namespace sluice
