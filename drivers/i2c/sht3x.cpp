#include "drivers/i2c/sht3x.h"

#include <chrono>
#include <cstdio>
#include <thread>

namespace sluice {

uint8_t Sht3xCrc(const uint8_t* data, size_t n) {
  uint8_t crc = 0xFF;
  for (size_t i = 0; i < n; ++i) {
    crc ^= data[i];
    for (int b = 0; b < 8; ++b) {
      crc = static_cast<uint8_t>((crc & 0x80) != 0 ? (crc << 1) ^ 0x31 : crc << 1);
    }
  }
  return crc;
}

double Sht3xTemperature(uint16_t raw) { return -45.0 + 175.0 * raw / 65535.0; }
double Sht3xHumidity(uint16_t raw) { return 100.0 * raw / 65535.0; }

StatusOr<ClimateReading> Sht3xMeasure(I2cBus& bus, uint8_t address) {
  char where[96];
  std::snprintf(where, sizeof where, "i2c %s address 0x%02x", bus.name().c_str(), address);
  const uint8_t cmd[2] = {0x24, 0x00};
  SLUICE_RETURN_IF_ERROR(bus.Write(address, cmd, sizeof cmd));
  std::this_thread::sleep_for(std::chrono::microseconds(15500));
  uint8_t d[6];
  Status st;
  for (int i = 0; i < 5; ++i) {
    st = bus.Read(address, d, sizeof d);  // NACKed while still converting
    if (st.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (!st.ok()) return st;
  const char* names[2] = {"temperature", "humidity"};
  for (int w = 0; w < 2; ++w) {
    uint8_t crc = Sht3xCrc(d + 3 * w, 2);
    if (crc != d[3 * w + 2]) {
      char buf[64];
      std::snprintf(buf, sizeof buf, " (got 0x%02x, computed 0x%02x)", d[3 * w + 2], crc);
      return Corruption(std::string(where) + ": CRC mismatch on the " + names[w] + " word" + buf);
    }
  }
  ClimateReading out;
  out.temperature_c = Sht3xTemperature(static_cast<uint16_t>(d[0] << 8 | d[1]));
  out.humidity_pct = Sht3xHumidity(static_cast<uint16_t>(d[3] << 8 | d[4]));
  out.has_humidity = true;
  return out;
}

}  // namespace sluice
