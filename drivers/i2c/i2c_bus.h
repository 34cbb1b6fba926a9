// The I2C seam: transfers to a 7-bit address on one bus. The real one is
// /dev/i2c-N through i2c-dev; tests plug in simulated chips.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace sluice {

// Not thread-safe: one user at a time (the chip reader locks).
class I2cBus {
 public:
  virtual ~I2cBus() = default;
  // One write transfer (a NACK is an error).
  virtual Status Write(uint8_t address, const uint8_t* data, size_t n) = 0;
  // One read transfer.
  virtual Status Read(uint8_t address, uint8_t* data, size_t n) = 0;
  // A write then a read, with a repeated start where the adapter can
  // (register reads: write the register number, read its bytes).
  virtual Status WriteRead(uint8_t address, const uint8_t* wdata, size_t wn, uint8_t* rdata,
                           size_t rn) = 0;
  // The bus as named in messages ("/dev/i2c-1").
  virtual const std::string& name() const = 0;
};

// Opens `path` (/dev/i2c-N) through i2c-dev. Transfers use I2C_RDWR when
// the adapter supports plain I2C (I2C_FUNC_I2C), else I2C_SLAVE and
// read()/write() (SMBus-only adapters: no repeated start). Errors name the
// path and errno (EACCES hints at the i2c group).
StatusOr<std::unique_ptr<I2cBus>> OpenLinuxI2cBus(const std::string& path);

}  // namespace sluice
