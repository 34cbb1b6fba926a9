// Simulated I2C chips behind the I2cBus seam, implementing the register
// maps and command sets of the datasheets (not canned answers): a Bosch
// BME280/BMP280 (chip id, calibration registers, ctrl_hum latched by
// ctrl_meas, forced mode with a `measuring` status bit, skipped
// measurements reading 0x80000/0x8000) and a Sensirion SHT3x (single-shot
// command, NACK while converting, CRC-8 on each word). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "drivers/i2c/i2c_bus.h"

namespace sluice {
namespace testing {

class SimI2cDevice {
 public:
  virtual ~SimI2cDevice() = default;
  // False: the chip NACKs.
  virtual bool OnWrite(const uint8_t* data, size_t n) = 0;
  virtual bool OnRead(uint8_t* data, size_t n) = 0;
};

// The Bosch calibration words in datasheet order (T1..P9, H1..H6).
struct SimBoschCalib {
  int T[3] = {27504, 26435, -1000};
  int P[9] = {36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000};
  int H1 = 75, H2 = 362, H3 = 0, H4 = 313, H5 = 50, H6 = 30;
};

class SimBosch : public SimI2cDevice {
 public:
  SimBosch(uint8_t chip_id, const SimBoschCalib& c) : chip_id_(chip_id) {
    regs_[0xD0] = chip_id;
    auto put16 = [&](int reg, int v) {
      regs_[reg] = uint8_t(v & 0xFF);
      regs_[reg + 1] = uint8_t((v >> 8) & 0xFF);
    };
    for (int i = 0; i < 3; ++i) put16(0x88 + 2 * i, c.T[i]);
    for (int i = 0; i < 9; ++i) put16(0x8E + 2 * i, c.P[i]);
    if (chip_id == 0x60) {
      regs_[0xA1] = uint8_t(c.H1);
      put16(0xE1, c.H2);
      regs_[0xE3] = uint8_t(c.H3);
      regs_[0xE4] = uint8_t((c.H4 >> 4) & 0xFF);
      regs_[0xE5] = uint8_t((c.H4 & 0x0F) | ((c.H5 & 0x0F) << 4));
      regs_[0xE6] = uint8_t((c.H5 >> 4) & 0xFF);
      regs_[0xE7] = uint8_t(c.H6);
    }
    StoreData(0x80000, 0x80000, 0x8000);  // reset values
  }
  void SetAdc(int32_t t, int32_t p, int32_t h) { adc_t_ = t, adc_p_ = p, adc_h_ = h; }
  // Status reads that still report `measuring` after each trigger.
  void SetBusyPolls(int n) { busy_polls_ = n; }
  int measurements() const { return measurements_; }

  bool OnWrite(const uint8_t* d, size_t n) override {
    if (n == 0) return true;
    ptr_ = d[0];
    // Register writes come as (register, value) pairs.
    for (size_t i = 0; i + 1 < n; i += 2) WriteReg(d[i], d[i + 1]);
    return true;
  }
  bool OnRead(uint8_t* d, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      uint8_t reg = ptr_++;
      if (reg == 0xF3) {
        d[i] = busy_left_ > 0 ? 0x08 : 0x00;
        if (busy_left_ > 0) --busy_left_;
      } else {
        d[i] = regs_[reg];
      }
    }
    return true;
  }

 private:
  void WriteReg(uint8_t reg, uint8_t v) {
    if (reg == 0xE0 && v == 0xB6) {  // soft reset
      regs_[0xF2] = regs_[0xF4] = 0;
      return;
    }
    if (reg == 0xF2) {
      pending_hum_ = v & 0x07;  // takes effect with the next ctrl_meas write
      return;
    }
    if (reg != 0xF4 && reg != 0xF5) return;  // read-only or unused here
    regs_[reg] = v;
    if (reg != 0xF4) return;
    regs_[0xF2] = pending_hum_;
    int mode = v & 0x03;
    if (mode == 1 || mode == 2) {  // forced: one measurement, then sleep
      int osrs_t = (v >> 5) & 7, osrs_p = (v >> 2) & 7, osrs_h = regs_[0xF2] & 7;
      StoreData(osrs_t ? adc_t_ : 0x80000, osrs_p ? adc_p_ : 0x80000,
                chip_id_ == 0x60 && osrs_h ? adc_h_ : 0x8000);
      busy_left_ = busy_polls_;
      ++measurements_;
      regs_[0xF4] = uint8_t(v & ~0x03);
    }
  }
  void StoreData(int32_t t, int32_t p, int32_t h) {
    regs_[0xF7] = uint8_t(p >> 12), regs_[0xF8] = uint8_t(p >> 4), regs_[0xF9] = uint8_t(p << 4);
    regs_[0xFA] = uint8_t(t >> 12), regs_[0xFB] = uint8_t(t >> 4), regs_[0xFC] = uint8_t(t << 4);
    regs_[0xFD] = uint8_t(h >> 8), regs_[0xFE] = uint8_t(h);
  }

  uint8_t chip_id_;
  uint8_t regs_[256] = {};
  uint8_t ptr_ = 0;
  uint8_t pending_hum_ = 0;
  int32_t adc_t_ = 0x80000, adc_p_ = 0x80000, adc_h_ = 0x8000;
  int busy_polls_ = 1;
  int busy_left_ = 0;
  int measurements_ = 0;
};

class SimSht3x : public SimI2cDevice {
 public:
  void SetRaw(uint16_t t, uint16_t rh) { raw_t_ = t, raw_h_ = rh; }
  void SetNackReads(int n) { nack_reads_ = n; }
  // Flips a bit of the CRC of word 0 (temperature) or 1 (humidity); -1: none.
  void SetCorruptCrc(int word) { corrupt_ = word; }
  int measurements() const { return measurements_; }

  bool OnWrite(const uint8_t* d, size_t n) override {
    if (n != 2) return false;
    uint16_t cmd = uint16_t(d[0] << 8 | d[1]);
    if (cmd == 0x2400 || cmd == 0x240B || cmd == 0x2416) {
      pending_ = true;
      nack_left_ = nack_reads_;
      ++measurements_;
      return true;
    }
    return cmd == 0x30A2;  // soft reset; anything else is NACKed
  }
  bool OnRead(uint8_t* d, size_t n) override {
    if (!pending_ || nack_left_ > 0) {
      if (nack_left_ > 0) --nack_left_;
      return false;  // no data (yet): NACK
    }
    pending_ = false;
    uint8_t out[6] = {uint8_t(raw_t_ >> 8), uint8_t(raw_t_), 0,
                      uint8_t(raw_h_ >> 8), uint8_t(raw_h_), 0};
    out[2] = Crc(out);
    out[5] = Crc(out + 3);
    if (corrupt_ >= 0) out[3 * corrupt_ + 2] ^= 0x10;
    for (size_t i = 0; i < n && i < 6; ++i) d[i] = out[i];
    return true;
  }

 private:
  // Written from the datasheet's table 20 independently of the driver's.
  static uint8_t Crc(const uint8_t* two) {
    unsigned crc = 0xFF;
    for (int i = 0; i < 2; ++i) {
      crc ^= two[i];
      for (int b = 0; b < 8; ++b) crc = (crc & 0x80) ? ((crc << 1) ^ 0x131) : (crc << 1);
    }
    return uint8_t(crc);
  }
  uint16_t raw_t_ = 0, raw_h_ = 0;
  bool pending_ = false;
  int nack_reads_ = 0, nack_left_ = 0, corrupt_ = -1, measurements_ = 0;
};

// A bus with chips at addresses. Open() hands out handles (counted) that
// forward to it, as reopening /dev/i2c-N would.
class SimI2cBus {
 public:
  void Attach(uint8_t address, SimI2cDevice* dev) { devices_[address] = dev; }
  // The next `n` transfers fail as a disturbed bus would (EIO).
  void FailNext(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_next_ = n;
  }
  int opens() const { return opens_; }
  int transfers() const { return transfers_; }

  StatusOr<std::unique_ptr<I2cBus>> Open() {
    ++opens_;
    return std::unique_ptr<I2cBus>(new Handle(this));
  }

 private:
  class Handle : public I2cBus {
   public:
    explicit Handle(SimI2cBus* bus) : bus_(bus) {}
    Status Write(uint8_t a, const uint8_t* d, size_t n) override {
      return bus_->Do(a, d, n, nullptr, 0);
    }
    Status Read(uint8_t a, uint8_t* d, size_t n) override { return bus_->Do(a, nullptr, 0, d, n); }
    Status WriteRead(uint8_t a, const uint8_t* w, size_t wn, uint8_t* r, size_t rn) override {
      return bus_->Do(a, w, wn, r, rn);
    }
    const std::string& name() const override { return name_; }

   private:
    SimI2cBus* bus_;
    std::string name_ = "sim-i2c";
  };

  Status Do(uint8_t a, const uint8_t* w, size_t wn, uint8_t* r, size_t rn) {
    std::lock_guard<std::mutex> lock(mu_);
    ++transfers_;
    char where[48];
    std::snprintf(where, sizeof where, "i2c sim-i2c address 0x%02x: ", a);
    if (fail_next_ > 0) {
      --fail_next_;
      return IoError(std::string(where) + "transfer: Input/output error");
    }
    auto it = devices_.find(a);
    if (it == devices_.end()) return IoError(std::string(where) + "transfer: no acknowledge");
    if (w != nullptr && !it->second->OnWrite(w, wn))
      return IoError(std::string(where) + "write NACK");
    if (r != nullptr && !it->second->OnRead(r, rn))
      return IoError(std::string(where) + "read NACK");
    return Status::Ok();
  }

  std::mutex mu_;
  std::map<uint8_t, SimI2cDevice*> devices_;
  int fail_next_ = 0;
  std::atomic<int> opens_{0};
  std::atomic<int> transfers_{0};
};

}  // namespace testing
}  // namespace sluice
