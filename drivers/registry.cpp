#include "drivers/driver.h"

#include "common/build_options.h"
#include "drivers/command.h"
#include "drivers/hwmon.h"
#include "drivers/iio.h"
#include "drivers/push.h"
#include "drivers/simulated.h"
#include "drivers/sysfs.h"
#include "drivers/w1.h"
#if SLUICE_DRIVER_GPIO
#include "drivers/gpio/gpio.h"
#endif
#if SLUICE_DRIVER_I2C
#include "drivers/i2c/i2c.h"
#endif
#if SLUICE_DRIVER_MODBUS
#include "drivers/modbus/modbus.h"
#endif
#if SLUICE_DRIVER_MQTT
#include "drivers/mqtt.h"
#endif
#if SLUICE_DRIVER_SERIAL
#include "drivers/serial.h"
#endif

namespace sluice {

DriverRegistry& DriverRegistry::Builtin() {
  static DriverRegistry* registry = [] {
    auto* r = new DriverRegistry();
    r->Register("simulated", CreateSimulatedDriver);
    r->Register("push", CreatePushDriver);
    r->Register("command", CreateCommandDriver);
#if SLUICE_DRIVER_SERIAL
    r->Register("serial", CreateSerialDriver);
#else
    r->RegisterLeftOut("serial", "SLUICE_DRIVER_SERIAL");
#endif
#if SLUICE_DRIVER_MQTT
    r->Register("mqtt", CreateMqttDriver);
#else
    r->RegisterLeftOut("mqtt", "SLUICE_DRIVER_MQTT");
#endif
#if SLUICE_DRIVER_MODBUS
    r->Register("modbus", CreateModbusDriver);
#else
    r->RegisterLeftOut("modbus", "SLUICE_DRIVER_MODBUS");
#endif
#if SLUICE_DRIVER_I2C
    r->Register("i2c", CreateI2cDriver);
#else
    r->RegisterLeftOut("i2c", "SLUICE_DRIVER_I2C");
#endif
#if SLUICE_DRIVER_GPIO
    r->Register("gpio", CreateGpioDriver);
#else
    r->RegisterLeftOut("gpio", "SLUICE_DRIVER_GPIO");
#endif
    r->Register("sysfs", CreateSysfsDriver);
    r->Register("hwmon", CreateHwmonDriver);
    r->Register("iio", CreateIioDriver);
    r->Register("w1", CreateW1Driver);
    return r;
  }();
  return *registry;
}

void DriverRegistry::Register(const std::string& name, DriverFactory factory) {
  factories_[name] = std::move(factory);
}

void DriverRegistry::RegisterLeftOut(const std::string& name, const std::string& option) {
  left_out_[name] = option;
}

bool DriverRegistry::Has(const std::string& name) const {
  return factories_.count(name) != 0;
}

std::vector<std::string> DriverRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& entry : factories_) names.push_back(entry.first);
  return names;
}

StatusOr<std::unique_ptr<Driver>> DriverRegistry::Create(const SensorSpec& spec,
                                                         Params& params,
                                                         DriverContext& ctx) const {
  auto it = factories_.find(spec.driver);
  if (auto out = left_out_.find(spec.driver); it == factories_.end() && out != left_out_.end()) {
    return params.SensorError("driver \"" + spec.driver +
                              "\" was left out of this build (built with " + out->second +
                              "=OFF; sluiced --version lists the drivers built in)");
  }
  if (it == factories_.end()) {
    std::string known;
    for (const auto& [name, factory] : factories_) {
      (void)factory;
      if (!known.empty()) known += ", ";
      known += name;
    }
    return params.SensorError("unknown driver \"" + spec.driver + "\" (known: " + known + ")");
  }
  params.set_driver(spec.driver);
  StatusOr<std::unique_ptr<Driver>> driver = it->second(spec, params, ctx);
  if (!driver.ok()) return driver.status();
  SLUICE_RETURN_IF_ERROR(params.CheckAllUsed());
  return driver;
}

Status ApplyCommonParams(Params& params, SensorSpec* spec) {
  StatusOr<double> scale = params.Number("scale", spec->scale);
  if (!scale.ok()) return scale.status();
  StatusOr<double> offset = params.Number("offset", spec->offset);
  if (!offset.ok()) return offset.status();
  StatusOr<double> deadband = params.Number("deadband", spec->deadband);
  if (!deadband.ok()) return deadband.status();
  if (*deadband < 0) return params.ErrorAt("deadband", "must be >= 0");
  StatusOr<int64_t> heartbeat = params.Duration("heartbeat", spec->heartbeat_us);
  if (!heartbeat.ok()) return heartbeat.status();
  StatusOr<int64_t> timeout = params.Duration("timeout", spec->timeout_us);
  if (!timeout.ok()) return timeout.status();
  if (*timeout < 0) return params.ErrorAt("timeout", "must be >= 0");
  spec->timeout_us = *timeout;
  spec->scale = *scale;
  spec->offset = *offset;
  spec->deadband = *deadband;
  spec->heartbeat_us = *heartbeat;
  return Status::Ok();
}

}  // namespace sluice
