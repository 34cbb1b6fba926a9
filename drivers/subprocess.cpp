#include "drivers/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "common/clock.h"
#include "common/units.h"

extern char** environ;

namespace sluice {
namespace {

// Without a pidfd (kernels before 5.3): how often the child's exit is
// checked while its pipes are open (a leftover group member may hold them)
// and once they are closed.
constexpr int kTickMs = 20;
constexpr int kClosedTickMs = 1;
// After SIGKILL, how long to wait for the child to become reapable (a child
// stuck in uninterruptible sleep is left for a later call to reap).
constexpr int64_t kReapWaitUs = 2 * 1000000ll;

// Deadlines of a real child's run and reaping (poll() and waitpid() in real
// time), so the process clock rather than an injected one.
int64_t MonoUs() { return SystemClock::Get().NowMonotonicUs(); }

// Children that did not die in time after SIGKILL; reaped by later calls.
std::mutex g_unreaped_mu;
std::vector<pid_t> g_unreaped;

void ReapLeftovers() {
  std::lock_guard<std::mutex> lock(g_unreaped_mu);
  for (size_t i = g_unreaped.size(); i-- > 0;) {
    int status;
    pid_t r = waitpid(g_unreaped[i], &status, WNOHANG);
    if (r == g_unreaped[i] || (r < 0 && errno == ECHILD)) {
      g_unreaped.erase(g_unreaped.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
}

// True once `pid` has terminated (left as a zombie: not reaped).
bool HasExited(pid_t pid) {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  int rc = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
  if (rc < 0) return errno == ECHILD;  // already reaped by someone else
  return info.si_pid == pid;
}

// Reaps `pid` (bounded); fills *status. False if it did not die in time.
bool Reap(pid_t pid, int* status) {
  const int64_t until = MonoUs() + kReapWaitUs;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) {
      *status = 0;
      return true;  // ECHILD: nothing left to reap
    }
    if (MonoUs() >= until) break;
    poll(nullptr, 0, 5);
  }
  std::lock_guard<std::mutex> lock(g_unreaped_mu);
  g_unreaped.push_back(pid);
  return false;
}

// Kills the group led by `pid` (while the unreaped leader still reserves
// the pgid) and reaps the leader.
bool KillGroupAndReap(pid_t pid, int* status) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);  // in case it left its group
  return Reap(pid, status);
}

// A descriptor that polls readable once `pid` exits; -1 if the kernel has
// no pidfd_open (then the caller polls with ticks).
int OpenPidFd(pid_t pid) {
#if defined(SYS_pidfd_open) && !defined(SLUICE_NO_PIDFD)  // the macro tests the fallback
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

class Pipe {
 public:
  Pipe() = default;
  ~Pipe() { CloseBoth(); }
  bool Open() {
    if (pipe2(fds_, O_CLOEXEC) != 0) return false;
    return fcntl(fds_[0], F_SETFL, O_NONBLOCK) == 0;
  }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void CloseRead() { CloseFd(&fds_[0]); }
  void CloseWrite() { CloseFd(&fds_[1]); }
  void CloseBoth() {
    CloseRead();
    CloseWrite();
  }

 private:
  static void CloseFd(int* fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  int fds_[2] = {-1, -1};
};

// Reads what is available on `pipe` into `*sink`. Returns false at EOF or a
// read error (the read end is then closed). `keep_tail`: keep only the last
// `limit` bytes; otherwise stop appending past `limit` + 1 (overflow).
bool Drain(Pipe& pipe, std::string* sink, size_t limit, bool keep_tail) {
  char buf[8192];
  for (;;) {
    ssize_t n = read(pipe.read_end(), buf, sizeof buf);
    if (n > 0) {
      sink->append(buf, static_cast<size_t>(n));
      if (keep_tail && sink->size() > limit) {
        sink->erase(0, sink->size() - limit);
      } else if (!keep_tail && sink->size() > limit) {
        return true;  // the caller sees the overflow
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    pipe.CloseRead();
    return false;
  }
}

struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

}  // namespace

std::string LastNonEmptyLine(const std::string& text, size_t max) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = text.rfind('\n', end - 1);
    start = start == std::string::npos ? 0 : start + 1;
    std::string line = text.substr(start, end - start);
    end = start > 0 ? start - 1 : 0;
    for (char& c : line) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    }
    size_t b = line.find_first_not_of(' ');
    if (b == std::string::npos) {
      if (start == 0) break;
      continue;
    }
    size_t e = line.find_last_not_of(' ');
    line = line.substr(b, e - b + 1);
    if (line.size() > max) line = line.substr(0, max) + "...";
    return line;
  }
  return "";
}

StatusOr<SubprocessResult> RunSubprocess(const SubprocessOptions& options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return InvalidArgument("no program to run");
  }
  const auto cannot_run = [&](int error) {
    std::string why = "cannot run " + options.argv[0] + ": " + std::strerror(error);
    return error == ENOENT ? Status(StatusCode::kNotFound, why) : InvalidArgument(why);
  };
  // A path that cannot be executed is named here: posix_spawn reports the
  // exec failure itself only where vfork semantics hold (not under
  // qemu-user, where the child just exits 127).
  if (options.argv[0].find('/') != std::string::npos &&
      ::access(options.argv[0].c_str(), X_OK) != 0) {
    return cannot_run(errno);
  }
  ReapLeftovers();
  Pipe out, err;
  if (!out.Open() || !err.Open()) return IoError(std::string("pipe: ") + std::strerror(errno));

  SpawnSetup s;
  posix_spawn_file_actions_addopen(&s.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&s.actions, out.write_end(), 1);
  posix_spawn_file_actions_adddup2(&s.actions, err.write_end(), 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  posix_spawn_file_actions_addclosefrom_np(&s.actions, 3);
#endif
  posix_spawnattr_setflags(&s.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&s.attr, 0);
  sigset_t mask;
  sigemptyset(&mask);
  posix_spawnattr_setsigmask(&s.attr, &mask);
  sigset_t defaults;
  sigfillset(&defaults);
  posix_spawnattr_setsigdefault(&s.attr, &defaults);

  std::vector<char*> argv;
  for (const std::string& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0], &s.actions, &s.attr, argv.data(), environ);
  out.CloseWrite();
  err.CloseWrite();
  if (rc != 0) return cannot_run(rc);

  const Fd pidfd(OpenPidFd(pid));
  SubprocessResult result;
  const int64_t deadline = MonoUs() + options.timeout_us;
  bool out_open = true;
  bool err_open = true;
  bool exited = false;
  int status = 0;
  for (;;) {
    if (out_open) out_open = Drain(out, &result.out, options.max_stdout, false);
    if (err_open) err_open = Drain(err, &result.err_tail, options.max_stderr_tail, true);
    if (result.out.size() > options.max_stdout) {
      KillGroupAndReap(pid, &status);
      return IoError("output exceeds " + std::to_string(options.max_stdout) + " bytes");
    }
    if (exited) break;  // drained once more after the exit
    if (HasExited(pid)) {
      exited = true;
      continue;
    }
    const int64_t now = MonoUs();
    if (now >= deadline) {
      KillGroupAndReap(pid, &status);
      return Status(StatusCode::kTimeout, "timed out after " + FormatDuration(options.timeout_us) +
                                              " (process group killed)");
    }
    int64_t wait_ms = (deadline - now + 999) / 1000;
    if (pidfd.get() < 0)
      wait_ms = std::min<int64_t>(wait_ms, out_open || err_open ? kTickMs : kClosedTickMs);
    pollfd fds[3];
    nfds_t n = 0;
    if (out_open) fds[n++] = {out.read_end(), POLLIN, 0};
    if (err_open) fds[n++] = {err.read_end(), POLLIN, 0};
    if (pidfd.get() >= 0) fds[n++] = {pidfd.get(), POLLIN, 0};
    poll(n > 0 ? fds : nullptr, n, static_cast<int>(wait_ms));
  }
  // The child is a zombie now: kill what it left behind, then reap it.
  if (!KillGroupAndReap(pid, &status)) {
    return IoError("child " + std::to_string(pid) + " could not be reaped");
  }
  if (WIFEXITED(status)) {
    result.exited = true;
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.term_signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace sluice
