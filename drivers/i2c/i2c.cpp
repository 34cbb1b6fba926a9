#include "drivers/i2c/i2c.h"

#include <cstdio>
#include <map>

#include "drivers/i2c/sht3x.h"
#include "drivers/param_choice.h"

namespace sluice {

I2cChip::I2cChip(I2cChipKind kind, uint8_t address, I2cBusOpener open_bus, Clock& clock)
    : kind_(kind), address_(address), open_bus_(std::move(open_bus)), clock_(clock) {}

uint64_t I2cChip::measurements() const {
  std::lock_guard<std::mutex> lock(mu_);
  return measurements_;
}

StatusOr<ClimateReading> I2cChip::Measure(int64_t max_age_us) {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = clock_.NowMonotonicUs();
  if (has_last_ && now - last_mono_us_ < max_age_us) return last_;
  if (bus_ == nullptr) {
    StatusOr<std::unique_ptr<I2cBus>> bus = open_bus_();
    if (!bus.ok()) return bus.status();
    bus_ = std::move(*bus);
    calibrated_ = false;
  }
  bool bosch = kind_ != I2cChipKind::kSht3x;
  bool bme = kind_ == I2cChipKind::kBme280;
  if (bosch && !calibrated_) {
    StatusOr<BoschCalibration> c = BoschInit(*bus_, address_, bme);
    if (!c.ok()) {
      bus_.reset();
      return c.status();
    }
    calibration_ = *c;
    calibrated_ = true;
  }
  StatusOr<ClimateReading> r =
      bosch ? BoschMeasure(*bus_, address_, bme, calibration_) : Sht3xMeasure(*bus_, address_);
  if (!r.ok()) {
    // A CRC error is the wire, not the adapter; everything else: reopen.
    if (r.status().code() != StatusCode::kCorruption || bosch) bus_.reset();
    return r.status();
  }
  ++measurements_;
  has_last_ = true;
  last_mono_us_ = now;
  last_ = *r;
  return last_;
}

I2cDriver::I2cDriver(std::shared_ptr<I2cChip> chip, ClimateQuantity quantity, int64_t interval_us)
    : chip_(std::move(chip)), quantity_(quantity), max_age_us_(interval_us / 2) {}

StatusOr<double> I2cDriver::Sample(int64_t /*wall_us*/) {
  StatusOr<ClimateReading> r = chip_->Measure(max_age_us_);
  if (!r.ok()) return r.status();
  switch (quantity_) {
    case ClimateQuantity::kTemperature:
      return r->temperature_c;
    case ClimateQuantity::kPressure:
      return r->pressure_pa;
    case ClimateQuantity::kHumidity:
      return r->humidity_pct;
  }
  return Internal("unknown quantity");
}

StatusOr<std::shared_ptr<I2cChip>> AcquireI2cChip(SharedDevices& devices,
                                                  const std::string& bus_path, uint8_t address,
                                                  I2cChipKind kind, I2cBusOpener open_bus,
                                                  Clock& clock) {
  return devices.Acquire<I2cChip>(
      bus_path + "@" + std::to_string(address),
      [&] { return std::make_shared<I2cChip>(kind, address, std::move(open_bus), clock); },
      [&](const I2cChip& chip) -> Status {
        if (chip.kind() == kind) return Status::Ok();
        return InvalidArgument("another sensor reads a different chip at this bus and address");
      });
}

StatusOr<std::unique_ptr<Driver>> CreateI2cDriver(const SensorSpec& spec, Params& params,
                                                  DriverContext& ctx) {
  std::string bus_path = "/dev/i2c-1";
  if (params.Has("bus")) {
    StatusOr<int64_t> n = params.Integer("bus", 1);
    if (n.ok()) {
      if (*n < 0 || *n > 1023) return params.ErrorAt("bus", "must be a bus number 0-1023");
      bus_path = "/dev/i2c-" + std::to_string(*n);
    } else {
      StatusOr<std::string> path = params.String("bus", "");
      if (!path.ok()) return params.ErrorAt("bus", "must be a bus number or a /dev/i2c-N path");
      if (path->empty() || (*path)[0] != '/') {
        return params.ErrorAt("bus",
                              "must be a bus number or an absolute path (got \"" + *path + "\")");
      }
      bus_path = *path;
    }
  }
  if (!params.Has("chip")) {
    return params.SensorError("param \"chip\" is required for driver \"i2c\"");
  }
  StatusOr<int> chip = ParamChoice(params, "chip", {"bme280", "bmp280", "sht3x"}, 0);
  if (!chip.ok()) return chip.status();
  I2cChipKind kind = static_cast<I2cChipKind>(*chip);
  int64_t def_addr = kind == I2cChipKind::kSht3x ? 0x44 : 0x76;
  StatusOr<int64_t> address = ParamIntRange(params, "address", def_addr, 0x03, 0x77);
  if (!address.ok()) return address.status();
  StatusOr<int> q = ParamChoice(params, "quantity", {"temperature", "pressure", "humidity"}, 0);
  if (!q.ok()) return q.status();
  ClimateQuantity quantity = static_cast<ClimateQuantity>(*q);
  if (quantity == ClimateQuantity::kPressure && kind == I2cChipKind::kSht3x) {
    return params.ErrorAt("quantity", "pressure needs a bme280 or bmp280 (an SHT3x has none)");
  }
  if (quantity == ClimateQuantity::kHumidity && kind == I2cChipKind::kBmp280) {
    return params.ErrorAt("quantity", "humidity needs a bme280 or sht3x (a BMP280 has none)");
  }
  StatusOr<std::shared_ptr<I2cChip>> shared = AcquireI2cChip(
      ctx.devices, bus_path, static_cast<uint8_t>(*address), kind,
      [bus_path] { return OpenLinuxI2cBus(bus_path); }, ctx.clock);
  if (!shared.ok()) return params.ErrorAt("chip", shared.status().message());
  return std::unique_ptr<Driver>(new I2cDriver(std::move(*shared), quantity, spec.interval_us));
}

}  // namespace sluice
