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
#include <vector>

#include "common/clock.h"
#include "common/event.h"
#include "common/status.h"
#include "drivers/driver_status.h"
#include "drivers/params.h"
#include "drivers/shared_devices.h"

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

// One read handed to Driver::SampleAsync(). The callbacks are thread-safe
// and may be called from any thread.
struct AsyncRead {
  int64_t wall_us = 0;  // as for Sample()
  // Optional, at most once and before `done`: the device transaction that
  // serves this read began at these monotonic and wall times (earlier than
  // the call when the read joined a transaction already running). The
  // read's timeout counts from there.
  std::function<void(int64_t mono_us, int64_t wall_us)> started;
  // Exactly once: the raw sample (before scale/offset) or its error.
  std::function<void(StatusOr<double> raw)> done;
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

  // Blocking drivers: what the Scheduler's worker calls. The default calls
  // read.done(Sample(read.wall_us)). Drivers whose sensors share one device
  // transaction (the command driver's shared runs) override it so that a
  // read joining a transaction already in progress registers `read` with
  // it and returns at once: waiting for a shared transaction never holds a
  // worker, and the thread running the transaction calls every joined
  // read's `done`. Sensors sharing a transaction must belong to one
  // Scheduler (whose Stop() waits for the thread running it).
  virtual void SampleAsync(AsyncRead read) { read.done(Sample(read.wall_us)); }

  // Active drivers: start producing into `sink` (e.g. bind listeners).
  // An error here (address in use, bad path) fails the daemon's start.
  virtual Status Start(ReadingSink& /*sink*/) { return Status::Ok(); }
  // Stops and joins everything Start() began. Idempotent.
  virtual void Stop() {}

  // What this driver reports about itself beyond what the Scheduler knows
  // (driver_status.h); the default reports nothing. Thread-safe: the daemon
  // calls it from the control thread while the driver runs.
  virtual DriverStatus Report() const { return {}; }
};

struct DriverContext {
  Clock& clock;
  // Devices shared between this daemon's sensors; outlives the factories'
  // calls (drivers keep what they acquire).
  SharedDevices& devices;
  // The directory the file-based drivers (sysfs, hwmon, iio, w1) use in
  // place of /sys itself: "/sys/bus/w1/devices" becomes sysfs_root +
  // "/bus/w1/devices" (the `root` defaults and `sysfs` paths). Tests point it at a fake tree; sluiced takes it from the
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
  // A driver this build left out, and the CMake option (OFF) that did:
  // Create() names both for a sensor using it.
  void RegisterLeftOut(const std::string& name, const std::string& option);
  bool Has(const std::string& name) const;
  // The drivers built in, sorted.
  std::vector<std::string> Names() const;
  // Left-out driver -> its CMake option.
  const std::map<std::string, std::string>& left_out() const { return left_out_; }
  // Creates the driver, or returns the (FILE:LINE:COL) validation error.
  StatusOr<std::unique_ptr<Driver>> Create(const SensorSpec& spec,
                                           Params& params,
                                           DriverContext& ctx) const;

 private:
  std::map<std::string, DriverFactory> factories_;
  std::map<std::string, std::string> left_out_;
};

// Reads the params every driver takes -- `scale`, `offset`, `deadband`
// (number >= 0), `heartbeat` and `timeout` (durations) -- from `params` into `spec`
// (absent keys leave `spec` unchanged) and marks them used. For configs that
// write them inside `params = {...}`; call before DriverRegistry::Create().
Status ApplyCommonParams(Params& params, SensorSpec* spec);

}  // namespace sluice
