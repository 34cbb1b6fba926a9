// `driver = "gpio"`: one GPIO input line through libgpiod (v1 API).
//
// Params (README "Sensor drivers"):
//   chip = "gpiochip0"   name, /dev path, label or number
//   line                 REQUIRED: offset (17) or line name ("DOOR")
//   mode = "level"       level: the line's value (0/1) at each interval
//                        count (alias edges): edges since the last sample
//                        rate: edges per second since the last sample
//   edge = "rising"      count/rate: rising | falling | both
//   active_low = false   invert the line (and so which edge is rising)
//   bias = "as_is"       as_is | disable | pull_up | pull_down (Linux >= 5.5)
//
// Counting: a watcher thread per counting sensor blocks on the line's event
// fd and adds every edge to an atomic counter, so edges are not lost
// between samples. The kernel queues 16 events per line (GPIO uAPI v1) and
// the watcher drains up to 16 per wakeup: bursts beyond what it can drain
// are dropped by the kernel (uAPI v1 does not report that); fine for pulse
// meters and anemometers (tens to hundreds of Hz), not for MHz counting.
// The first sample after the line is (re)requested starts the count and
// returns kUnavailable; the count follows at the next interval. After an
// error the line and chip are released and requested again next sample.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"
#include "drivers/driver.h"
#include "drivers/gpio/gpio_chip.h"

namespace sluice {

enum class GpioMode { kLevel, kCount, kRate };

struct GpioConfig {
  std::string chip = "gpiochip0";
  GpioLineRequest line;
  GpioMode mode = GpioMode::kLevel;
};

// Sample() runs on one thread at a time (the pool); the watcher thread
// only touches the atomics and the error slot.
class GpioDriver final : public Driver {
 public:
  GpioDriver(GpioConfig config, GpioChipOpener open_chip, Clock& clock);
  ~GpioDriver() override;  // stops the watcher, releases the line

  bool polled() const override { return true; }
  // A value read may sleep (GPIO expanders on I2C/SPI).
  bool blocking() const override { return true; }
  StatusOr<double> Sample(int64_t wall_us) override;

  // Edges counted since the line was requested (for tests and status).
  uint64_t edges_seen() const { return edges_total_.load(); }

 private:
  Status Open();
  void Close();
  void Watch();

  const GpioConfig config_;
  GpioChipOpener open_chip_;
  Clock& clock_;

  std::unique_ptr<GpioChip> chip_;
  std::unique_ptr<GpioLine> line_;
  std::thread watcher_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> edges_{0};        // since the last sample
  std::atomic<uint64_t> edges_total_{0};  // since the request
  std::mutex error_mu_;
  std::string error_;  // guarded by error_mu_: why the watcher stopped
  int64_t last_mono_us_ = 0;
};

StatusOr<std::unique_ptr<Driver>> CreateGpioDriver(const SensorSpec& spec, Params& params,
                                                   DriverContext& ctx);

}  // namespace sluice
