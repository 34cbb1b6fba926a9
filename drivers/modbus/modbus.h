// `driver = "modbus"`: one register (or coil) of a Modbus TCP or RTU device,
// read through libmodbus. Blocking: sampled on the scheduler's worker pool.
//
// Params (README "Sensor drivers"):
//   url | device   tcp://HOST[:PORT] (502), rtu:///dev/ttyUSB0?baud=9600&
//                  parity=N&data_bits=8&stop_bits=1, or a device path
//   baud, parity, data_bits, stop_bits   RTU serial settings (9600, none, 8, 1)
//   unit = 1       unit (slave) id, 0-255 (TCP) or 1-247 (RTU)
//   register       REQUIRED, 0-based address on the wire, 0-65535
//   kind | table | function = "holding"   holding | input | coil | discrete
//   type = "uint16"        int16 | uint16 | int32 | uint32 | float32 (registers)
//   word_order = "big"     32-bit types: big (high word first) | little
//   byte_order = "big"     registers: big (high byte first) | little
//   reconnect_min = "500ms", reconnect_max = "30s"   device reconnect backoff
//
// Every sensor naming the same device shares one connection (and its
// backoff); they must agree on the serial settings and reconnect values.
// Each request waits for its response up to half of the sensor's timeout
// (spec.timeout_us, default min(interval, 10 s)), so a read that must first
// connect still ends within the timeout.
#pragma once

#include <memory>

#include "drivers/driver.h"
#include "drivers/modbus/modbus_codec.h"
#include "drivers/modbus/modbus_link.h"

namespace sluice {

StatusOr<std::unique_ptr<Driver>> CreateModbusDriver(const SensorSpec& spec, Params& params,
                                                     DriverContext& ctx);

// What one sensor reads.
struct ModbusPoint {
  int unit = 1;
  ModbusTable table = ModbusTable::kHolding;
  int address = 0;
  ModbusFormat format;
};

// Sample() is thread-safe (the link locks); called on the worker pool.
class ModbusDriver final : public Driver {
 public:
  ModbusDriver(std::shared_ptr<ModbusLink> link, ModbusPoint point, int64_t timeout_us);

  bool polled() const override { return true; }
  bool blocking() const override { return true; }
  StatusOr<double> Sample(int64_t wall_us) override;

  ModbusLink& link() { return *link_; }

 private:
  std::shared_ptr<ModbusLink> link_;
  ModbusPoint point_;
  int64_t response_timeout_us_;
};

}  // namespace sluice
