// The daemon's wiring: ring, drivers, scheduler, uplinks — built from a
// Config, started in order and stopped in the reverse order.
//
// Start order: control socket (first: it is also what keeps a second
// sluiced off the same data_dir; answers "starting" until Start() is done),
// ring (opens or recovers buffer.db, starts the writer),
// rules (state restored, windows refilled; see agent/daemon/rules_runner.h),
// uplinks (a dead broker is normal: they buffer and retry), push
// listeners, scheduler. Shutdown: scheduler and listeners stop, the ring
// commits what is queued, the rules thread evaluates it and commits its
// last alerts, uplinks wait up to agent.shutdown_grace for in-flight
// acknowledgements, cursors are saved, the ring closes. The control socket
// closes first, so nothing reads the parts while they stop.
//
// Main thread only, except where noted.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "agent/config/config.h"
#include "agent/control/control_server.h"
#include "agent/daemon/status.h"
#include "buffer/ring.h"
#include "common/clock.h"
#include "common/status.h"
#include "drivers/driver.h"
#include "drivers/scheduler.h"
#include "rules/rule.h"

namespace sluice {

class Uplink;
class RingSink;
class RulesRunner;

class Daemon {
 public:
  // Validates everything that can be checked without side effects: every
  // sensor's driver and params, password files, the rule files of
  // rules.files (loaded here; warnings logged). Errors are
  // "FILE:LINE:COL: ..." lines (the config's, drivers' and rule files').
  static StatusOr<std::unique_ptr<Daemon>> Create(Config config, Clock& clock);
  ~Daemon();

  // Starts everything; on error, what started is stopped again.
  Status Start();
  // Ordered stop (see above). Idempotent.
  void Shutdown();
  // After Shutdown(): true if sensor reads were still blocked inside
  // drivers after shutdown_grace. The caller must then end the process
  // without destroying the Daemon (_exit), as the reads use its drivers.
  bool abandoned_reads() const { return abandoned_reads_; }
  // SIGHUP: reloads rules.files. A bad file keeps the running rules and
  // logs the errors; otherwise the rules thread installs the new set
  // (unchanged rules keep windows and state) and the change is logged.
  void Reload();
  // Called about once a second by main: periodic status logging, the
  // ingest rate.
  void Tick();
  // True while everything started, the ring's writer thread went round its
  // loop within the last kWriterStallUs (it does every second unless a
  // commit hangs) and the rules thread runs (the watchdog's test).
  bool Healthy() const;
  static constexpr int64_t kWriterStallUs = 30000000;

  Ring* ring() { return ring_.get(); }
  // The bound HTTP /metrics port (0: none).
  int metrics_port() const { return control_ ? control_->metrics_port() : 0; }

  // Control thread only (after Start() succeeded): the status snapshot.
  DaemonSnapshot Snapshot();

 private:
  Daemon(Config config, Clock& clock);
  Status StartControl();
  // The writer's and the rules thread's part of Healthy(); any thread once
  // started.
  bool PartsHealthy(int64_t writer_idle_us) const;
  // The control socket's request handler (control thread).
  StatusOr<std::string> HandleControl(const std::string& cmd);
  // Warns about password and key files that others may read.
  void CheckSecretFiles() const;

  Config config_;
  Clock& clock_;
  std::vector<std::unique_ptr<Driver>> drivers_;
  std::vector<SensorSpec> specs_;
  std::vector<std::string> passwords_;  // per upstream; never logged
  std::unique_ptr<Ring> ring_;
  std::unique_ptr<RingSink> sink_;
  rules::RuleSet rules_;                 // loaded by Create, moved by Start
  std::unique_ptr<RulesRunner> runner_;  // null without rules.files
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<std::unique_ptr<Uplink>> uplinks_;
  std::vector<Driver*> started_;
  bool started_all_ = false;
  bool stopped_ = false;
  bool abandoned_reads_ = false;
  int64_t last_log_us_ = 0;
  std::unique_ptr<ControlServer> control_;
  std::atomic<bool> serving_{false};           // Start() done: the control thread may look
  std::unique_ptr<RingReader> status_reader_;  // control thread only
  int64_t started_wall_us_ = 0;
  int64_t started_mono_us_ = 0;
  int64_t rate_time_us_ = 0;  // main thread (Tick)
  uint64_t rate_seq_ = 0;
  std::atomic<double> ingest_rate_{0};
};

}  // namespace sluice
