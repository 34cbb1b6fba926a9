// Runs one program to completion with a timeout and bounded output, safely
// from a multithreaded process. Used by the `command` driver.
//
// - posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK) + exec, nothing unsafe
//   between fork and exec); the child runs in its own process group (pgid =
//   its pid), with stdin = /dev/null, stdout and stderr on two pipes, every
//   other descriptor closed (closefrom(3)), an empty signal mask and every
//   signal at its default action (sluiced ignores SIGPIPE; glibc's spawn
//   alone leaves its two internal real-time signals ignored).
// - stdout and stderr are read together with poll(), so a child filling one
//   pipe never deadlocks against us reading the other. The child's exit is
//   seen through a pidfd (Linux >= 5.3), else by checking every 1-20 ms.
// - The whole process group is killed (SIGKILL) when the deadline passes,
//   when stdout exceeds `max_stdout`, and as soon as the direct child exits
//   (so a leftover background process cannot hold the pipes open). The group
//   is killed before the child is reaped, while the zombie still reserves the
//   pgid, so the kill can never hit an unrelated, recycled group. The direct
//   child is always reaped; group members that outlive it are re-parented
//   to init (or the nearest subreaper), which reaps them after the kill.
//
// Thread-safe: RunSubprocess() may run concurrently on several threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice {

struct SubprocessOptions {
  std::vector<std::string> argv;  // argv[0]: a path, or a name found on PATH
  int64_t timeout_us = 10 * 1000000ll;
  size_t max_stdout = 64 * 1024;  // more is an error
  size_t max_stderr_tail = 4096;  // only the last bytes of stderr are kept
};

struct SubprocessResult {
  std::string out;       // everything written to stdout
  std::string err_tail;  // the last max_stderr_tail bytes of stderr
  bool exited = false;   // exited normally (exit_code valid)
  int exit_code = -1;
  int term_signal = 0;  // killed by this signal (when !exited)
};

// Runs the program. An error Status means it did not run to completion:
// kInvalidArgument / kNotFound when it cannot be started (no such file, not
// executable), kTimeout when the deadline passed (the group was killed),
// kIoError when stdout exceeded max_stdout or an OS call failed. Otherwise
// the result says how the child ended (exit code or signal).
StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& options);

// The last non-empty line of `text`, trimmed, with control characters
// replaced and cut to `max` bytes; "" if there is none.
std::string LastNonEmptyLine(const std::string& text, size_t max = 200);

}  // namespace sluice
