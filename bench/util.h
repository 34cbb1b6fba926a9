// Small helpers for sluice-bench: temp dirs, free loopback ports, child
// processes stopped by PID, /proc readings, JSON lines and the summary
// table. Self-contained (no test-support library), loopback only, and every
// wait is bounded. Not thread-safe unless stated.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice {
namespace bench {

// Monotonic microseconds. Thread-safe.
int64_t NowUs();

// A fresh directory under $TMPDIR (or /tmp), removed when destroyed unless
// Keep() was called.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "sluice-bench");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const { return path_ + "/" + name; }
  void Keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

bool RemoveRecursively(const std::string& path);
bool WriteFile(const std::string& path, const std::string& data);
std::string ReadFile(const std::string& path);
// Total size of the regular files directly in `dir`.
uint64_t DirBytes(const std::string& dir);

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort();
bool PortAcceptsConnections(int port);

// Polls pred every poll_us until true or timeout_us passes; returns pred().
bool WaitUntil(const std::function<bool()>& pred, int64_t timeout_us,
               int64_t poll_us = 5000);

// A child process (fork/exec), PR_SET_PDEATHSIG=SIGKILL so it dies with us;
// stopped and reaped by PID only. The destructor SIGKILLs a running child.
class Child {
 public:
  Child() = default;
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // argv[0] is the program path; output goes to `log_path` (or /dev/null).
  bool Start(const std::vector<std::string>& argv, const std::string& log_path,
             std::string* error);
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // Waits up to timeout_us; true once reaped (status and rusage saved).
  bool Wait(int64_t timeout_us);
  // SIGTERM, wait up to grace_us, then SIGKILL; always reaped. Returns the
  // wait status.
  int Terminate(int64_t grace_us);
  int status() const { return status_; }
  // Exited normally with status 0.
  bool Succeeded() const;
  const struct rusage& rusage() const { return rusage_; }
  // Peak RSS of the reaped child in KiB (ru_maxrss).
  int64_t MaxRssKiB() const { return rusage_.ru_maxrss; }
  // User+system CPU seconds of the reaped child.
  double CpuSeconds() const;

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  struct rusage rusage_ {};
};

std::string DescribeStatus(int status);

// VmHWM / VmRSS of a live process in KiB (-1 if unreadable).
int64_t ProcStatusKiB(pid_t pid, const char* field);
// utime+stime of a live process in seconds (-1 if unreadable).
double ProcCpuSeconds(pid_t pid);
// "tid:seconds tid:seconds ..." CPU per thread of a live process, in tid
// (creation) order.
std::string ThreadCpu(pid_t pid);
// This process's user+system CPU seconds (all threads).
double SelfCpuSeconds();

// Path of this executable (for worker subprocesses).
std::string SelfExe();
// The directory holding sluiced: $SLUICE_BIN_DIR, else this executable's.
std::string BinDir();

// One JSON object printed as one line on stdout.
class JsonLine {
 public:
  JsonLine(const std::string& bench, const std::string& name);
  JsonLine& Str(const std::string& key, const std::string& value);
  JsonLine& Int(const std::string& key, int64_t value);
  JsonLine& Num(const std::string& key, double value);
  JsonLine& Bool(const std::string& key, bool value);
  void Print();  // to stdout, flushed

 private:
  std::string s_;
};

double Median(std::vector<double> v);

// Rows for the human summary printed on stderr at the end.
struct SummaryRow {
  std::string bench, name, figure, note;
};
void AddSummary(SummaryRow row);
void PrintSummary();

std::string FormatRate(double per_s);

}  // namespace bench
}  // namespace sluice
