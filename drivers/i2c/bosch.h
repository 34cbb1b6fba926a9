// Bosch BME280 / BMP280: calibration, forced-mode measurement and the
// datasheets' integer compensation formulas (BME280 datasheet 4.2.3,
// BMP280 datasheet 3.11.3: temperature in 0.01 degC, pressure from the
// 64-bit formula in Pa/256, humidity in %RH/1024). Pure functions are
// thread-safe; BoschReadOnce() uses the bus it is given.
#pragma once

#include <cstdint>

#include "common/status.h"
#include "drivers/i2c/i2c_bus.h"

namespace sluice {

constexpr uint8_t kBme280ChipId = 0x60;
constexpr uint8_t kBmp280ChipId = 0x58;

struct BoschCalibration {
  uint16_t T1 = 0;
  int16_t T2 = 0, T3 = 0;
  uint16_t P1 = 0;
  int16_t P2 = 0, P3 = 0, P4 = 0, P5 = 0, P6 = 0, P7 = 0, P8 = 0, P9 = 0;
  uint8_t H1 = 0;
  int16_t H2 = 0;
  uint8_t H3 = 0;
  int16_t H4 = 0, H5 = 0;
  int8_t H6 = 0;
};

// From registers 0x88..0xA1 (26 bytes) and, for the BME280, 0xE1..0xE7 (7
// bytes; null for the BMP280).
BoschCalibration ParseBoschCalibration(const uint8_t* r88, const uint8_t* re1);

// Temperature in 0.01 degC; sets *t_fine for the other two.
int32_t BoschCompensateT(int32_t adc_t, const BoschCalibration& c, int32_t* t_fine);
// Pressure in Pa as unsigned Q24.8 (divide by 256); 0 if the calibration
// would divide by zero.
uint32_t BoschCompensateP(int32_t adc_p, const BoschCalibration& c, int32_t t_fine);
// Relative humidity in % as unsigned Q22.10 (divide by 1024).
uint32_t BoschCompensateH(int32_t adc_h, const BoschCalibration& c, int32_t t_fine);

struct ClimateReading {
  double temperature_c = 0;
  double pressure_pa = 0;
  double humidity_pct = 0;
  bool has_pressure = false;
  bool has_humidity = false;
};

// Checks the chip id (`bme280` true: 0x60, else 0x58), reads the
// calibration and returns it. Errors name the bus, address and what was
// found (a BMP280 configured as a BME280, no chip, blank calibration).
StatusOr<BoschCalibration> BoschInit(I2cBus& bus, uint8_t address, bool bme280);

// One forced-mode measurement (oversampling x1 for each quantity), waiting
// for the chip (about 10 ms), then compensation.
StatusOr<ClimateReading> BoschMeasure(I2cBus& bus, uint8_t address, bool bme280,
                                      const BoschCalibration& c);

}  // namespace sluice
