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
// with `field = "temp"` / `"hum"`). At most one run of a command is in
// progress at a time; a sample joins the run in progress (its timeout
// counting from that run's start), else takes the newest finished run when
// that started at most half of its own interval before the sample (so the
// sensors sampled at one deadline see one run), else starts a run. Through
// the Scheduler (SampleAsync) a sample that joins a run returns its worker
// at once; the thread running the command hands the result to every joined
// sample. Sample() called directly waits for the run instead.
#pragma once

#include <cstdint>
#include <functional>
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
// Thread-safe.
class SharedCommand {
 public:
  // The output of a run, or why there is none.
  using OutputFn = std::function<void(const StatusOr<std::string>& output)>;
  // When the run serving a request began (monotonic, wall).
  using StartedFn = std::function<void(int64_t mono_us, int64_t wall_us)>;

  explicit SharedCommand(std::vector<std::string> argv) : argv_(std::move(argv)) {}

  // Serves one request, calling `done` exactly once:
  // - a run is in progress: calls `started` (if set) with its start, then
  //   returns at once; the thread running it calls `done` when it ends;
  // - else the newest run started at or after `not_before_mono_us`: calls
  //   `done` with its result before returning;
  // - else runs the command now on this thread (stamped `now_mono_us`,
  //   `now_wall_us`, killed after `timeout_us`), then calls `done` and the
  //   `done` of every request that joined meanwhile, before returning.
  void Serve(int64_t now_mono_us, int64_t now_wall_us, int64_t not_before_mono_us,
             int64_t timeout_us, const StartedFn& started, OutputFn done);
  // Serve(), waiting for the output (also for a run in progress elsewhere).
  StatusOr<std::string> Output(int64_t now_mono_us, int64_t not_before_mono_us, int64_t timeout_us);
  // Runs so far.
  uint64_t runs() const;
  const std::vector<std::string>& argv() const { return argv_; }

  // The instance in `devices` for `argv` (shared while any driver holds it).
  static std::shared_ptr<SharedCommand> For(SharedDevices& devices,
                                            const std::vector<std::string>& argv);

 private:
  // Runs the command (no lock held): its output or error.
  StatusOr<std::string> RunOnce(int64_t timeout_us) const;

  const std::vector<std::string> argv_;
  mutable std::mutex mu_;  // guards everything below (never held for a run)
  bool running_ = false;
  int64_t running_mono_us_ = 0;  // the run in progress started
  int64_t running_wall_us_ = 0;
  std::vector<OutputFn> waiters_;  // joined the run in progress
  bool has_result_ = false;
  int64_t started_mono_us_ = 0;  // the newest finished run started
  StatusOr<std::string> result_{Internal("no run yet")};
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
  void SampleAsync(AsyncRead read) override;

  const SharedCommand& command() const { return *command_; }
  int64_t timeout_us() const { return timeout_us_; }

 private:
  std::shared_ptr<SharedCommand> command_;
  std::string field_;
  int64_t interval_us_;
  int64_t timeout_us_;
  StatusOr<double> Parse(const StatusOr<std::string>& output) const;

  Clock& clock_;
};

}  // namespace sluice
