// The driver interface: one [[sensor]] is one Driver instance, made by the
// registry from `driver = "..."`.
//
// Polled drivers (interval_us() > 0) are sampled by the Scheduler at
// absolute deadlines; active drivers (push) run their own listeners and
// hand readings to the ReadingSink themselves.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/event.h"
#include "common/status.h"
#include "drivers/params.h"

namespace sluice {

// Where readings go (the ring, and later the rules). Thread-safe.
class ReadingSink {
 public:
  virtual ~ReadingSink() = default;
  // Hands over one reading. Waits up to `timeout_us` when the pipeline is
  // full (backpressure); returns kUnavailable if it stayed full or the
  // pipeline is stopping.
  virtual Status Submit(Reading reading, int64_t timeout_us) = 0;
  // Reports `n` readings the caller gave up on after Submit refused them
  // (a stream producer that waits and resubmits reports nothing).
  virtual void CountDropped(uint64_t n) { (void)n; }
};

// Everything common to every sensor, from its [[sensor]] table.
struct SensorSpec {
  std::string name;
  std::string driver;
  int64_t interval_us = 1000000;
  std::string unit;
  double scale = 1.0;       // value * scale + offset
  double offset = 0.0;
  double deadband = 0.0;    // 0: commit every reading
  int64_t heartbeat_us = 0; // 0: none
  // Per-read timeout for blocking drivers (`timeout` param); 0: the driver's
  // or the scheduler's default (min(interval, 10 s)).
  int64_t timeout_us = 0;
};

class Driver {
 public:
  virtual ~Driver() = default;

  // True for drivers the Scheduler samples every spec.interval_us.
  virtual bool polled() const = 0;

  // True for polled drivers whose Sample() may block on I/O (a bus, a tty,
  // a child process, a network device). The Scheduler then calls Sample()
  // on its worker pool, never on the scheduler thread, and stops waiting
  // after spec.timeout_us (the sensor is marked failing "timed out"); a
  // driver should still bound its own I/O by spec.timeout_us. Sample() of
  // one sensor is never called concurrently with itself, but sensors that
  // share a device (one Modbus connection) may be sampled concurrently and
  // must lock what they share.
  virtual bool blocking() const { return false; }

  // Polled drivers: one raw sample (before scale/offset) at wall time
  // `wall_us`. Non-blocking drivers: scheduler thread, must not block.
  virtual StatusOr<double> Sample(int64_t /*wall_us*/) {
    return Internal("not a polled driver");
  }

  // Active drivers: start producing into `sink` (e.g. bind listeners).
  // An error here (address in use, bad path) fails the daemon's start.
  virtual Status Start(ReadingSink& /*sink*/) { return Status::Ok(); }
  // Stops and joins everything Start() began. Idempotent.
  virtual void Stop() {}
};

struct DriverContext {
  Clock& clock;
  // Where the file-based drivers (sysfs, hwmon, iio, w1) find /sys: their
  // `root` defaults and the `/sys/...` paths of `sysfs` are taken below
  // it. Tests point it at a fake tree; sluiced takes it from the
  // environment variable SLUICE_SYSFS_ROOT (for tests only).
  std::string sysfs_root = "/sys";
};

using DriverFactory = std::function<StatusOr<std::unique_ptr<Driver>>(
    const SensorSpec& spec, Params& params, DriverContext& ctx)>;

// Maps `driver = "..."` to a factory. Factories validate their params (and
// the registry then calls params.CheckAllUsed()).
class DriverRegistry {
 public:
  // The registry holding every built-in driver.
  static DriverRegistry& Builtin();

  void Register(const std::string& name, DriverFactory factory);
  bool Has(const std::string& name) const;
  // Creates the driver, or returns the (FILE:LINE:COL) validation error.
  StatusOr<std::unique_ptr<Driver>> Create(const SensorSpec& spec,
                                           Params& params,
                                           DriverContext& ctx) const;

 private:
  std::map<std::string, DriverFactory> factories_;
};

// Reads the params every driver takes -- `scale`, `offset`, `deadband`
// (number >= 0), `heartbeat` and `timeout` (durations) -- from `params` into `spec`
// (absent keys leave `spec` unchanged) and marks them used. For configs that
// write them inside `params = {...}`; call before DriverRegistry::Create().
Status ApplyCommonParams(Params& params, SensorSpec* spec);

}  // namespace sluice
