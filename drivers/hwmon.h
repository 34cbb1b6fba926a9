// `driver = "hwmon"`: one input of a Linux hwmon chip
// (/sys/class/hwmon/hwmonN), found by the chip's `name` file and the
// input's file name or label -- never by N, which changes between boots
// and module reloads.
//
// Params:
//   chip  = "coretemp"        required: the content of hwmonN/name
//   input = "temp1_input"     the input file, or
//   label = "Package id 0"    the content of an input's *_label file
//                             (exactly one of input and label)
//   root  = "/sys/class/hwmon"   (default: DriverContext::sysfs_root + /class/hwmon)
//
// The chip is resolved when the driver is made and again whenever a read
// fails; every read also checks that hwmonN/name still names the chip, so
// a renumbered chip is found again within the same read and another chip
// that took its number is never read. Values come in the hwmon ABI's base
// units: temp, in, curr and humidity inputs are divided by 1,000 (C, V, A,
// %RH), power and energy by 1,000,000 (W, J); others (fan RPM, pwm) are
// returned as they are. blocking(): true (many hwmon chips are read over
// I2C when the file is read).
#pragma once

#include <memory>
#include <string>

#include "drivers/driver.h"
#include "drivers/sysfs_files.h"

namespace sluice {

StatusOr<std::unique_ptr<Driver>> CreateHwmonDriver(const SensorSpec& spec, Params& params,
                                                    DriverContext& ctx);

// location(): the input file in use. Worker pool thread.
class HwmonDriver final : public ResolvingFileDriver {
 public:
  // Exactly one of `input` and `label` is non-empty.
  HwmonDriver(std::string root, std::string chip, std::string input, std::string label);

 private:
  Status Resolve() override;
  StatusOr<double> ReadResolved() override;

  std::string root_;
  std::string chip_;
  std::string input_;
  std::string label_;
  std::string name_path_;  // root_/hwmonN/name
  double divisor_ = 1;
};

}  // namespace sluice
