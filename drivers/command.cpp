#include "drivers/command.h"

#include <signal.h>
#include <string.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <utility>

#include "drivers/subprocess.h"
#include "drivers/value_text.h"

namespace sluice {
namespace {

constexpr int64_t kDefaultTimeoutUs = 10 * 1000000ll;
constexpr size_t kMaxOutput = 64 * 1024;

std::string SignalName(int sig) {
  std::string s = "signal " + std::to_string(sig);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* abbrev = sigabbrev_np(sig)) s += std::string(" (SIG") + abbrev + ")";
#endif
  return s;
}

// The cache key: argv joined by NUL (which no argument can contain).
std::string KeyOf(const std::vector<std::string>& argv) {
  std::string key;
  for (const std::string& a : argv) {
    key += a;
    key.push_back('\0');
  }
  return key;
}

}  // namespace

StatusOr<double> ParseCommandOutput(const std::string& output, const std::string& field) {
  if (field.empty()) {
    std::string_view t = TrimSpace(output);
    if (t.empty()) return InvalidArgument("no output");
    StatusOr<double> v = ParsePlainNumber(t);
    if (v.ok()) return v;
    if (t.find('\n') != std::string_view::npos) {
      return InvalidArgument(
          "output is several lines, not one number (set param \"field\" "
          "to read a name=value line): \"" +
          Snippet(t) + "\"");
    }
    return InvalidArgument("output is " + v.status().message());
  }
  std::string names;
  size_t pos = 0;
  while (pos < output.size()) {
    size_t nl = output.find('\n', pos);
    if (nl == std::string::npos) nl = output.size();
    std::string_view line(output.data() + pos, nl - pos);
    pos = nl + 1;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = TrimSpace(line.substr(0, eq));
    if (name != field) {
      if (names.size() < 80 && !name.empty()) names += (names.empty() ? "" : ", ") + Snippet(name);
      continue;
    }
    StatusOr<double> v = ParsePlainNumber(line.substr(eq + 1));
    if (!v.ok()) return InvalidArgument("\"" + field + "=\" line: " + v.status().message());
    return v;
  }
  std::string what = "no line \"" + field + "=...\" in the output";
  if (!names.empty()) what += " (names: " + names + ")";
  if (TrimSpace(output).empty()) what = "no output";
  return InvalidArgument(what);
}

std::shared_ptr<SharedCommand> SharedCommand::For(SharedDevices& devices,
                                                  const std::vector<std::string>& argv) {
  // Every run of one argv is the same: any live instance is compatible.
  return *devices.Acquire<SharedCommand>(
      KeyOf(argv), [&] { return std::make_shared<SharedCommand>(argv); },
      [](const SharedCommand&) { return Status::Ok(); });
}

uint64_t SharedCommand::runs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return runs_;
}

StatusOr<std::string> SharedCommand::RunOnce(int64_t timeout_us) const {
  SubprocessOptions o;
  o.argv = argv_;
  o.timeout_us = timeout_us;
  o.max_stdout = kMaxOutput;
  StatusOr<SubprocessResult> r = RunSubprocess(o);
  if (!r.ok()) return Status(r.status().code(), argv_[0] + ": " + r.status().message());
  if (r->exited && r->exit_code == 0) return std::move(r->out);
  std::string why = r->exited ? "exit status " + std::to_string(r->exit_code)
                              : "killed by " + SignalName(r->term_signal);
  std::string last = LastNonEmptyLine(r->err_tail);
  why += last.empty() ? " (nothing on stderr)" : ": " + last;
  return Status(StatusCode::kUnavailable, argv_[0] + ": " + why);
}

void SharedCommand::Serve(int64_t now_mono_us, int64_t now_wall_us, int64_t not_before_mono_us,
                          int64_t timeout_us, const StartedFn& started, OutputFn done) {
  std::unique_lock<std::mutex> lock(mu_);
  if (running_) {
    if (started) started(running_mono_us_, running_wall_us_);
    waiters_.push_back(std::move(done));
    return;
  }
  if (has_result_ && started_mono_us_ >= not_before_mono_us) {
    StatusOr<std::string> cached = result_;
    lock.unlock();
    done(cached);
    return;
  }
  running_ = true;
  running_mono_us_ = now_mono_us;
  running_wall_us_ = now_wall_us;
  ++runs_;
  lock.unlock();
  StatusOr<std::string> out = RunOnce(timeout_us);
  lock.lock();
  running_ = false;
  has_result_ = true;
  started_mono_us_ = now_mono_us;
  result_ = out;
  std::vector<OutputFn> waiters;
  waiters.swap(waiters_);
  lock.unlock();
  done(out);
  for (OutputFn& w : waiters) w(out);
}

StatusOr<std::string> SharedCommand::Output(int64_t now_mono_us, int64_t not_before_mono_us,
                                            int64_t timeout_us) {
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  StatusOr<std::string> result{Internal("no result")};
  Serve(now_mono_us, 0, not_before_mono_us, timeout_us, nullptr,
        [&](const StatusOr<std::string>& out) {
          std::lock_guard<std::mutex> lock(mu);
          result = out;
          ready = true;
          cv.notify_all();
        });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return ready; });
  return result;
}

CommandDriver::CommandDriver(std::shared_ptr<SharedCommand> command, std::string field,
                             int64_t interval_us, int64_t timeout_us, Clock& clock)
    : command_(std::move(command)),
      field_(std::move(field)),
      interval_us_(interval_us),
      timeout_us_(timeout_us),
      clock_(clock) {}

StatusOr<double> CommandDriver::Parse(const StatusOr<std::string>& out) const {
  if (!out.ok()) return out.status();
  StatusOr<double> v = ParseCommandOutput(*out, field_);
  if (!v.ok()) return InvalidArgument(command_->argv()[0] + ": " + v.status().message());
  return v;
}

StatusOr<double> CommandDriver::Sample(int64_t /*wall_us*/) {
  const int64_t now = clock_.NowMonotonicUs();
  return Parse(command_->Output(now, now - interval_us_ / 2, timeout_us_));
}

void CommandDriver::SampleAsync(AsyncRead read) {
  const int64_t now = clock_.NowMonotonicUs();
  auto done = std::move(read.done);
  command_->Serve(now, read.wall_us, now - interval_us_ / 2, timeout_us_, read.started,
                  [this, done](const StatusOr<std::string>& out) { done(Parse(out)); });
}

StatusOr<std::unique_ptr<Driver>> CreateCommandDriver(const SensorSpec& spec, Params& params,
                                                      DriverContext& ctx) {
  StatusOr<bool> shell = params.Bool("shell", false);
  if (!shell.ok()) return shell.status();
  if (!params.Has("argv")) {
    return params.SensorError(
        "param \"argv\" is required for driver \"command\" (a list: "
        "[\"/path/to/program\", \"arg\"])");
  }
  std::vector<std::string> argv;
  StatusOr<std::vector<std::string>> list = params.StringList("argv");
  if (list.ok()) {
    argv = std::move(*list);
  } else if (*shell) {
    StatusOr<std::string> line = params.String("argv", "");
    if (!line.ok()) return params.ErrorAt("argv", "must be a string or a list of one string");
    argv.push_back(*line);
  } else {
    return list.status();
  }
  if (argv.empty() || argv[0].empty()) return params.ErrorAt("argv", "must name a program");
  if (*shell) {
    if (argv.size() != 1) {
      return params.ErrorAt("argv",
                            "with shell = true must be one command line (a string or a "
                            "list of one string), not " +
                                std::to_string(argv.size()) + " strings");
    }
    argv = {"/bin/sh", "-c", argv[0]};
  }
  StatusOr<std::string> field = params.String("field", "");
  if (!field.ok()) return field.status();
  if (params.Has("field") && (field->empty() || field->find_first_of("=\n") != std::string::npos ||
                              TrimSpace(*field) != *field)) {
    return params.ErrorAt("field", "must be a name without '=', newlines or surrounding spaces");
  }
  int64_t timeout = spec.timeout_us;
  if (timeout <= 0) timeout = std::min<int64_t>(spec.interval_us, kDefaultTimeoutUs);
  if (timeout <= 0) timeout = kDefaultTimeoutUs;
  return std::unique_ptr<Driver>(
      new CommandDriver(SharedCommand::For(ctx.devices, argv), *field, spec.interval_us, timeout, ctx.clock));
}

}  // namespace sluice
