// `driver = "i2c"`: temperature, pressure or humidity from a Bosch BME280 /
// BMP280 or a Sensirion SHT3x on /dev/i2c-N. Blocking: sampled on the
// scheduler's worker pool.
//
// Params (README "Sensor drivers"):
//   bus = 1           bus number (/dev/i2c-1) or a path
//   chip              REQUIRED: bme280 | bmp280 | sht3x
//   address           7-bit address; default 0x76 (Bosch) or 0x44 (SHT3x)
//   quantity = "temperature"   temperature (degC) | pressure (Pa, Bosch
//                              only) | humidity (%RH, BME280 and SHT3x)
//
// Sensors naming the same bus and address share one I2cChip: one
// measurement serves every quantity sampled within half an interval of it.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "drivers/driver.h"
#include "drivers/i2c/bosch.h"
#include "drivers/i2c/i2c_bus.h"

namespace sluice {

enum class I2cChipKind { kBme280, kBmp280, kSht3x };
enum class ClimateQuantity { kTemperature, kPressure, kHumidity };

using I2cBusOpener = std::function<StatusOr<std::unique_ptr<I2cBus>>()>;

// One chip at one address. Thread-safe: sensors on the pool share it.
class I2cChip {
 public:
  // `open_bus` is called on first use and again after any error (the
  // adapter may have been unplugged).
  I2cChip(I2cChipKind kind, uint8_t address, I2cBusOpener open_bus, Clock& clock);

  // The latest measurement if it is younger than `max_age_us` (monotonic),
  // else a new one. Errors close the bus; the next call starts afresh
  // (chip id check and calibration included).
  StatusOr<ClimateReading> Measure(int64_t max_age_us);

  I2cChipKind kind() const { return kind_; }
  // Measurements taken from the chip so far.
  uint64_t measurements() const;

 private:
  const I2cChipKind kind_;
  const uint8_t address_;
  I2cBusOpener open_bus_;
  Clock& clock_;

  mutable std::mutex mu_;  // guards everything below
  std::unique_ptr<I2cBus> bus_;
  bool calibrated_ = false;
  BoschCalibration calibration_;
  bool has_last_ = false;
  int64_t last_mono_us_ = 0;
  ClimateReading last_;
  uint64_t measurements_ = 0;
};

// Sample() is thread-safe (the chip locks).
class I2cDriver final : public Driver {
 public:
  I2cDriver(std::shared_ptr<I2cChip> chip, ClimateQuantity quantity, int64_t interval_us);

  bool polled() const override { return true; }
  bool blocking() const override { return true; }
  StatusOr<double> Sample(int64_t wall_us) override;

 private:
  std::shared_ptr<I2cChip> chip_;
  ClimateQuantity quantity_;
  int64_t max_age_us_;
};

// The shared chip in `devices` for (`bus_path`, `address`), made with
// `open_bus` if none is live. Error (plain message) if it is live as another
// chip kind. Thread-safe.
StatusOr<std::shared_ptr<I2cChip>> AcquireI2cChip(SharedDevices& devices,
                                                  const std::string& bus_path, uint8_t address,
                                                  I2cChipKind kind, I2cBusOpener open_bus,
                                                  Clock& clock);

StatusOr<std::unique_ptr<Driver>> CreateI2cDriver(const SensorSpec& spec, Params& params,
                                                  DriverContext& ctx);

}  // namespace sluice
