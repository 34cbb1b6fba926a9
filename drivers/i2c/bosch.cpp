#include "drivers/i2c/bosch.h"

#include <chrono>
#include <cstdio>
#include <thread>

namespace sluice {
namespace {

constexpr uint8_t kRegCalib00 = 0x88;
constexpr uint8_t kRegChipId = 0xD0;
constexpr uint8_t kRegCalib26 = 0xE1;
constexpr uint8_t kRegCtrlHum = 0xF2;
constexpr uint8_t kRegStatus = 0xF3;
constexpr uint8_t kRegCtrlMeas = 0xF4;
constexpr uint8_t kRegData = 0xF7;
constexpr uint8_t kStatusMeasuring = 0x08;
// osrs_t = x1, osrs_p = x1, mode = forced.
constexpr uint8_t kCtrlMeasForced = (1 << 5) | (1 << 2) | 0x01;

uint16_t U16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
int16_t S16(const uint8_t* p) { return static_cast<int16_t>(U16(p)); }

std::string Where(const I2cBus& bus, uint8_t address) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%02x", address);
  return "i2c " + bus.name() + " address " + buf;
}

Status ReadRegs(I2cBus& bus, uint8_t address, uint8_t reg, uint8_t* out, size_t n) {
  return bus.WriteRead(address, &reg, 1, out, n);
}

Status WriteReg(I2cBus& bus, uint8_t address, uint8_t reg, uint8_t value) {
  uint8_t buf[2] = {reg, value};
  return bus.Write(address, buf, 2);
}

}  // namespace

BoschCalibration ParseBoschCalibration(const uint8_t* r, const uint8_t* h) {
  BoschCalibration c;
  c.T1 = U16(r + 0);
  c.T2 = S16(r + 2);
  c.T3 = S16(r + 4);
  c.P1 = U16(r + 6);
  c.P2 = S16(r + 8);
  c.P3 = S16(r + 10);
  c.P4 = S16(r + 12);
  c.P5 = S16(r + 14);
  c.P6 = S16(r + 16);
  c.P7 = S16(r + 18);
  c.P8 = S16(r + 20);
  c.P9 = S16(r + 22);
  c.H1 = r[25];  // 0xA1 (0xA0 is unused)
  if (h != nullptr) {
    c.H2 = S16(h + 0);
    c.H3 = h[2];
    // 12-bit signed values split across 0xE4..0xE6.
    c.H4 = static_cast<int16_t>(static_cast<int8_t>(h[3]) * 16 | (h[4] & 0x0F));
    c.H5 = static_cast<int16_t>(static_cast<int8_t>(h[5]) * 16 | (h[4] >> 4));
    c.H6 = static_cast<int8_t>(h[6]);
  }
  return c;
}

// The datasheet's formulas, with left shifts of signed values written as
// multiplications (shifting a negative value left is undefined in C++17)
// and 32-bit intermediates widened to 64 bits: the same results wherever
// the 32-bit versions do not overflow.
int32_t BoschCompensateT(int32_t adc_t, const BoschCalibration& c, int32_t* t_fine) {
  int64_t var1 = (((int64_t{adc_t} >> 3) - int64_t{c.T1} * 2) * c.T2) >> 11;
  int64_t d = (adc_t >> 4) - int64_t{c.T1};
  int64_t var2 = (((d * d) >> 12) * c.T3) >> 14;
  *t_fine = static_cast<int32_t>(var1 + var2);
  return static_cast<int32_t>((int64_t{*t_fine} * 5 + 128) >> 8);
}

uint32_t BoschCompensateP(int32_t adc_p, const BoschCalibration& c, int32_t t_fine) {
  int64_t var1 = int64_t{t_fine} - 128000;
  int64_t var2 = var1 * var1 * c.P6;
  var2 = var2 + var1 * c.P5 * (int64_t{1} << 17);
  var2 = var2 + int64_t{c.P4} * (int64_t{1} << 35);
  var1 = ((var1 * var1 * c.P3) >> 8) + var1 * c.P2 * (int64_t{1} << 12);
  var1 = ((int64_t{1} << 47) + var1) * c.P1 >> 33;
  if (var1 == 0) return 0;
  int64_t p = 1048576 - int64_t{adc_p};
  p = ((p * (int64_t{1} << 31)) - var2) * 3125 / var1;
  var1 = (int64_t{c.P9} * (p >> 13) * (p >> 13)) >> 25;
  var2 = (int64_t{c.P8} * p) >> 19;
  p = ((p + var1 + var2) >> 8) + int64_t{c.P7} * 16;
  return static_cast<uint32_t>(p);
}

uint32_t BoschCompensateH(int32_t adc_h, const BoschCalibration& c, int32_t t_fine) {
  int64_t v = int64_t{t_fine} - 76800;
  v = (((int64_t{adc_h} * 16384 - int64_t{c.H4} * 1048576 - int64_t{c.H5} * v) + 16384) >> 15) *
      (((((((v * c.H6) >> 10) * (((v * c.H3) >> 11) + 32768)) >> 10) + 2097152) * c.H2 + 8192) >>
       14);
  v = v - (((((v >> 15) * (v >> 15)) >> 7) * c.H1) >> 4);
  if (v < 0) v = 0;
  if (v > 419430400) v = 419430400;
  return static_cast<uint32_t>(v >> 12);
}

StatusOr<BoschCalibration> BoschInit(I2cBus& bus, uint8_t address, bool bme280) {
  uint8_t id = 0;
  SLUICE_RETURN_IF_ERROR(ReadRegs(bus, address, kRegChipId, &id, 1));
  uint8_t want = bme280 ? kBme280ChipId : kBmp280ChipId;
  if (id != want) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", id);
    std::string found = id == kBme280ChipId   ? " (a BME280)"
                        : id == kBmp280ChipId ? " (a BMP280)"
                                              : "";
    return Status(StatusCode::kNotFound, Where(bus, address) + ": chip id " + buf + found +
                                             ", expected " +
                                             (want == 0x60 ? "0x60 (BME280)" : "0x58 (BMP280)"));
  }
  uint8_t r[26];
  uint8_t h[7];
  SLUICE_RETURN_IF_ERROR(ReadRegs(bus, address, kRegCalib00, r, sizeof r));
  if (bme280) SLUICE_RETURN_IF_ERROR(ReadRegs(bus, address, kRegCalib26, h, sizeof h));
  BoschCalibration c = ParseBoschCalibration(r, bme280 ? h : nullptr);
  if (c.T1 == 0 || c.T1 == 0xFFFF || c.P1 == 0 || c.P1 == 0xFFFF) {
    return Corruption(Where(bus, address) + ": blank calibration data (dig_T1 " +
                      std::to_string(c.T1) + ", dig_P1 " + std::to_string(c.P1) + ")");
  }
  return c;
}

StatusOr<ClimateReading> BoschMeasure(I2cBus& bus, uint8_t address, bool bme280,
                                      const BoschCalibration& c) {
  // ctrl_hum takes effect only with the following ctrl_meas write.
  if (bme280) SLUICE_RETURN_IF_ERROR(WriteReg(bus, address, kRegCtrlHum, 0x01));
  SLUICE_RETURN_IF_ERROR(WriteReg(bus, address, kRegCtrlMeas, kCtrlMeasForced));
  // x1/x1/x1 takes at most 9.3 ms (datasheet 9.1); then poll `measuring`.
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  uint8_t status = kStatusMeasuring;
  for (int i = 0; i < 20; ++i) {
    SLUICE_RETURN_IF_ERROR(ReadRegs(bus, address, kRegStatus, &status, 1));
    if ((status & kStatusMeasuring) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if ((status & kStatusMeasuring) != 0) {
    return Status(StatusCode::kTimeout, Where(bus, address) + ": measurement did not finish");
  }
  uint8_t d[8] = {};
  SLUICE_RETURN_IF_ERROR(ReadRegs(bus, address, kRegData, d, bme280 ? 8 : 6));
  int32_t adc_p = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4);
  int32_t adc_t = (d[3] << 12) | (d[4] << 4) | (d[5] >> 4);
  int32_t adc_h = (d[6] << 8) | d[7];
  // 0x80000 / 0x8000: the reset value of a skipped measurement.
  if (adc_t == 0x80000 || adc_p == 0x80000 || (bme280 && adc_h == 0x8000)) {
    return IoError(Where(bus, address) + ": the chip returned no measurement (skipped)");
  }
  ClimateReading out;
  int32_t t_fine = 0;
  out.temperature_c = BoschCompensateT(adc_t, c, &t_fine) / 100.0;
  uint32_t p = BoschCompensateP(adc_p, c, t_fine);
  if (p == 0) return Corruption(Where(bus, address) + ": calibration gives no pressure");
  out.pressure_pa = p / 256.0;
  out.has_pressure = true;
  if (bme280) {
    out.humidity_pct = BoschCompensateH(adc_h, c, t_fine) / 1024.0;
    out.has_humidity = true;
  }
  return out;
}

}  // namespace sluice
