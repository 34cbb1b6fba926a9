// `driver = "command"`: runs a program each interval and reads one number
// from its standard output.
//
// Params:
//   argv  (required)  ["/usr/bin/prog", "-a"]: the program and its arguments,
//                     run directly (no shell); argv[0] without a '/' is looked
//                     up on PATH
//   shell = false     true: argv is ONE string (or a one-element list) run by
//                     /bin/sh -c
//   field             absent: the whole output is one number ("21.5\n");
//                     set: the output is `name=value` lines and the value of
//                     the line named `field` is read (other lines ignored)
//   timeout           (common param) kill the run after this long; default
//                     min(interval, 10s)
//
// Each run: posix_spawn in its own process group, stdin /dev/null, no other
// inherited descriptors (drivers/subprocess.h). The group is SIGKILLed on
// timeout and the child reaped. Errors (the sensor is marked failing):
// cannot start, timed out, stdout over 64 KiB, exit status != 0 or death by
// a signal (with stderr's last non-empty line), unparsable output.
//
// Shared runs: sensors with the same argv and shell flag share one run per
// interval (e.g. one script printing `temp=..` and `hum=..` for two sensors
// with `field = "temp"` / `"hum"`). They share a cache holding the newest run's
// result; a sensor re-runs the command only when that run started more than
// half of its own interval before its sample, so the sensors sampled at one
// deadline see one run. While a run is in progress the others wait for it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "drivers/driver.h"

namespace sluice {

// Factory registered as "command".
StatusOr<std::unique_ptr<Driver>> CreateCommandDriver(const SensorSpec& spec, Params& params,
                                                      DriverContext& ctx);

// The number in `output`: with `field` empty the whole output (one number,
// surrounding whitespace allowed), else the value of the `field=value` line.
// Errors say what was wrong ("output is not a number: \"abc\"", "no line
// \"temp=...\" in the output (names: a, b)").
StatusOr<double> ParseCommandOutput(const std::string& output, const std::string& field);

// One command's runs, shared by every sensor naming the same argv.
// Thread-safe: concurrent callers wait for one run.
class SharedCommand {
 public:
  explicit SharedCommand(std::vector<std::string> argv) : argv_(std::move(argv)) {}

  // The stdout of a run that started at or after `not_before_mono_us`
  // (running the command now if the newest run is older), or that run's
  // error. `now_mono_us` stamps a new run's start.
  StatusOr<std::string> Output(int64_t now_mono_us, int64_t not_before_mono_us, int64_t timeout_us);
  // Runs so far.
  uint64_t runs() const;
  const std::vector<std::string>& argv() const { return argv_; }

  // The instance for `argv` (shared while any driver holds it).
  static std::shared_ptr<SharedCommand> For(const std::vector<std::string>& argv);

 private:
  const std::vector<std::string> argv_;
  mutable std::mutex mu_;  // held for a whole run
  bool has_result_ = false;
  int64_t started_mono_us_ = 0;
  Status status_;
  std::string output_;
  uint64_t runs_ = 0;
};

// Polled, blocking. Sample() is never called concurrently with itself.
class CommandDriver final : public Driver {
 public:
  // `clock` (monotonic: the sharing window) must outlive the driver.
  CommandDriver(std::shared_ptr<SharedCommand> command, std::string field, int64_t interval_us,
                int64_t timeout_us, Clock& clock);

  bool polled() const override { return true; }
  bool blocking() const override { return true; }
  StatusOr<double> Sample(int64_t wall_us) override;

  const SharedCommand& command() const { return *command_; }
  int64_t timeout_us() const { return timeout_us_; }

 private:
  std::shared_ptr<SharedCommand> command_;
  std::string field_;
  int64_t interval_us_;
  int64_t timeout_us_;
  Clock& clock_;
};

}  // namespace sluice
