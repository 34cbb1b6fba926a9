// `driver = "sysfs"`: one number read from one file, e.g.
// /sys/class/thermal/thermal_zone0/temp (millidegrees: scale = 0.001).
//
// Params:
//   path = "/sys/..."   required, absolute. A path below /sys is read below
//                       DriverContext::sysfs_root instead (tests).
// The file must hold one decimal number (surrounding whitespace allowed);
// empty, garbage, NaN and inf are errors that fail the sensor. blocking():
// true -- a sysfs attribute read may wait on a bus or firmware (an I2C
// chip, a mailbox), so reads run on the Scheduler's worker pool.
#pragma once

#include <memory>
#include <string>

#include "drivers/driver.h"

namespace sluice {

StatusOr<std::unique_ptr<Driver>> CreateSysfsDriver(const SensorSpec& spec, Params& params,
                                                    DriverContext& ctx);

// Worker pool thread (one Sample() at a time).
class SysfsDriver final : public Driver {
 public:
  explicit SysfsDriver(std::string path) : path_(std::move(path)) {}
  bool polled() const override { return true; }
  bool blocking() const override { return true; }
  StatusOr<double> Sample(int64_t wall_us) override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace sluice
