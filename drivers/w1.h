// `driver = "w1"`: a 1-Wire temperature sensor (DS18B20, DS18S20, DS1822,
// MAX31850 ...) through the kernel's w1_therm driver:
// /sys/bus/w1/devices/<id>/w1_slave.
//
// Params:
//   device = "28-0000075d1c2a"   required: the device id, or just its family
//                                code ("28") when exactly one device of
//                                that family is on the bus
//   root   = "/sys/bus/w1/devices"  (default: DriverContext::sysfs_root + /bus/w1/devices)
//
// w1_slave holds two lines:
//   72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
//   72 01 4b 46 7f ff 0e 10 57 t=23125
// The value is t / 1000 (C). Errors (the sensor fails and is retried): a
// first line without "YES" (CRC mismatch), t=85000 (the power-on reset
// value: no conversion happened), a temperature outside the measuring range
// of a known family (see W1FamilyRange: a DS18B20 at 2047.9 C is a
// corrupted read that still passed the CRC), an all-zero scratchpad (a device that
// stopped answering reads as zeros with a valid CRC), anything else
// malformed. A family-code device is looked up again after a failure.
// blocking(): true -- reading w1_slave starts a conversion that takes up to
// 750 ms.
#pragma once

#include <memory>
#include <string>

#include "drivers/driver.h"
#include "drivers/sysfs_files.h"

namespace sluice {

StatusOr<std::unique_ptr<Driver>> CreateW1Driver(const SensorSpec& spec, Params& params,
                                                 DriverContext& ctx);

// The datasheet measuring range of a 1-Wire thermometer family.
struct W1Range {
  double min_c;
  double max_c;
  const char* part;
};
// The range for family code `family` ("28": DS18B20, -55..125 C; also 10,
// 22, 42, 3B); false for a family without a known range (not checked).
bool W1FamilyRange(const std::string& family, W1Range* out);

// Parses w1_slave content (read from `path`, which also names the device
// directory and so its family): the temperature in C, or why it is not
// one.
StatusOr<double> ParseW1Slave(const std::string& text, const std::string& path);

// location(): the w1_slave file in use. Worker pool thread.
class W1Driver final : public ResolvingFileDriver {
 public:
  W1Driver(std::string root, std::string device);

 private:
  Status Resolve() override;
  StatusOr<double> ReadResolved() override;

  std::string root_;
  std::string device_;  // an id, or a family code
};

}  // namespace sluice
