// The daemon's wiring: ring, drivers, scheduler, uplinks — built from a
// Config, started in order and stopped in the reverse order.
//
// Start order: ring (opens or recovers buffer.db, starts the writer),
// uplinks (a dead broker is normal: they buffer and retry), push
// listeners, scheduler. Shutdown: scheduler and listeners stop, the ring
// commits what is queued, uplinks wait up to agent.shutdown_grace for
// in-flight acknowledgements, cursors are saved, the ring closes.
//
// Main thread only, except where noted.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/config.h"
#include "buffer/ring.h"
#include "common/clock.h"
#include "common/status.h"
#include "drivers/driver.h"
#include "drivers/scheduler.h"

namespace sluice {

class Uplink;
class RingSink;

class Daemon {
 public:
  // Validates everything that can be checked without side effects: every
  // sensor's driver and params, password files. Errors are
  // "FILE:LINE:COL: ..." lines (the config's and drivers').
  static StatusOr<std::unique_ptr<Daemon>> Create(Config config, Clock& clock);
  ~Daemon();

  // Starts everything; on error, what started is stopped again.
  Status Start();
  // Ordered stop (see above). Idempotent.
  void Shutdown();
  // SIGHUP: reload rule files (none are loaded until the rules engine lands).
  void Reload();
  // Called about once a second by main: periodic status logging.
  void Tick();
  // True while the writer and every uplink thread are alive (watchdog).
  bool Healthy() const;

  Ring* ring() { return ring_.get(); }

 private:
  Daemon(Config config, Clock& clock);

  Config config_;
  Clock& clock_;
  std::vector<std::unique_ptr<Driver>> drivers_;
  std::vector<SensorSpec> specs_;
  std::vector<std::string> passwords_;  // per upstream; never logged
  std::unique_ptr<Ring> ring_;
  std::unique_ptr<RingSink> sink_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<std::unique_ptr<Uplink>> uplinks_;
  std::vector<Driver*> started_;
  bool started_all_ = false;
  bool stopped_ = false;
  int64_t last_log_us_ = 0;
};

}  // namespace sluice
