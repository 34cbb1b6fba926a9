// `driver = "iio"`: one channel of a Linux IIO device
// (/sys/bus/iio/devices/iio:deviceN), found by the device's `name` file.
//
// Params:
//   device  = "ads1015"     required: the content of iio:deviceN/name
//   channel = "voltage0"    required: the <chan> in in_<chan>_raw
//   root    = "/sys/bus/iio/devices"  (default: DriverContext::sysfs_root + /bus/iio/devices)
//
// Value, per the kernel's IIO ABI (Documentation/ABI/testing/sysfs-bus-iio):
// in_<chan>_input when the device provides it, else
// (in_<chan>_raw + offset) * scale, where offset and scale come from
// in_<chan>_offset / in_<chan>_scale, or the shared in_<type>_offset /
// in_<type>_scale (type = the channel's leading letters: "voltage"), and
// default to 0 and 1. A scale file reading 0 fails the read (it would turn
// every raw value into 0). The result is in the ABI's units for the channel
// type (voltage: mV, temp: m°C, ...): convert with the common scale param.
// The device is resolved when the driver is made and again after a failed
// read (iio:deviceN numbers change); each read checks the name file.
// blocking(): true (reading _raw usually starts a conversion on a bus).
#pragma once

#include <memory>
#include <string>

#include "drivers/driver.h"
#include "drivers/sysfs_files.h"

namespace sluice {

StatusOr<std::unique_ptr<Driver>> CreateIioDriver(const SensorSpec& spec, Params& params,
                                                  DriverContext& ctx);

// location(): the device directory in use. Worker pool thread.
class IioDriver final : public ResolvingFileDriver {
 public:
  IioDriver(std::string root, std::string device, std::string channel);

 private:
  Status Resolve() override;
  StatusOr<double> ReadResolved() override;

  std::string root_;
  std::string device_;
  std::string channel_;
  // Files found by Resolve(); empty when absent.
  std::string input_path_;
  std::string raw_path_;
  std::string offset_path_;
  std::string scale_path_;
};

}  // namespace sluice
