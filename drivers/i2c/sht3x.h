// Sensirion SHT3x (SHT30/31/35): single-shot measurement, high
// repeatability, no clock stretching (command 0x2400), both words checked
// with the datasheet CRC-8 (polynomial 0x31, init 0xFF).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "drivers/i2c/bosch.h"
#include "drivers/i2c/i2c_bus.h"

namespace sluice {

// CRC-8 over `n` bytes (datasheet 4.12: 0xBE 0xEF -> 0x92). Thread-safe.
uint8_t Sht3xCrc(const uint8_t* data, size_t n);

// Temperature (degC) and humidity (%RH) from the raw words (datasheet 4.13).
double Sht3xTemperature(uint16_t raw);
double Sht3xHumidity(uint16_t raw);

// Sends the command, waits for the conversion (at most 15.5 ms; the chip
// NACKs reads until done, polled a few times) and reads both words. A CRC
// mismatch is kCorruption naming the word.
StatusOr<ClimateReading> Sht3xMeasure(I2cBus& bus, uint8_t address);

}  // namespace sluice
