// A child process for tests (mosquitto, sluiced, ...): fork/exec with
// arguments and extra environment, stdout/stderr to files. The child gets
// PR_SET_PDEATHSIG=SIGKILL, so it dies with the test; the destructor kills
// (SIGKILL) and reaps it if it still runs. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sluice {
namespace testing {

class Process {
 public:
  struct Options {
    std::vector<std::string> argv;       // argv[0] is the program path
    std::vector<std::string> extra_env;  // "KEY=VALUE", added to environ (replacing)
    std::string stdout_path;             // empty: /dev/null
    std::string stderr_path;             // empty: /dev/null
  };

  Process() = default;
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts the child. Returns false (with *error set) if fork or opening the
  // output files fails; an exec failure shows as exit status 127.
  bool Start(const Options& options, std::string* error = nullptr);

  pid_t pid() const { return pid_; }
  // True while started and not yet reaped.
  bool running() const { return pid_ > 0; }

  // Sends `sig` to the child (no-op once reaped).
  void Kill(int sig);

  // Waits up to timeout_us for the child to exit and reaps it. Returns the
  // raw wait status, or nullopt on timeout (child still running).
  std::optional<int> Wait(int64_t timeout_us);

  // SIGTERM, wait up to grace_us, then SIGKILL and reap. Returns the raw
  // wait status.
  int Terminate(int64_t grace_us);

  // The last reaped wait status (valid after Wait/Terminate succeeded).
  int wait_status() const { return wait_status_; }

 private:
  pid_t pid_ = -1;
  int wait_status_ = 0;
};

// "exit 0", "signal 9", ... for messages.
std::string DescribeWaitStatus(int status);

}  // namespace testing
}  // namespace sluice
