// Small helpers shared by tests: temp dirs, free loopback ports, bounded
// polling, binary lookup. Everything here is loopback-only and bounded.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace sluice {
namespace testing {

// A fresh directory under $TMPDIR (or /tmp), removed recursively when the
// object is destroyed. Not thread-safe.
class TempDir {
 public:
  TempDir();  // aborts the test process if mkdtemp fails
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Join(const std::string& name) const;

 private:
  std::string path_;
};

// Removes `path` and everything below it (no symlink following). Returns
// false if something could not be removed.
bool RemoveRecursively(const std::string& path);

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0 and read
// it back). Never a fixed port.
int FreeLoopbackPort();

// True once a TCP connect to 127.0.0.1:port succeeds.
bool PortAcceptsConnections(int port);

// Polls `pred` every `poll_us` until it is true or `timeout_us` passes.
// Returns the last value of pred().
bool WaitUntil(const std::function<bool()>& pred, int64_t timeout_us,
               int64_t poll_us = 10000);

// The directory of the project's binaries: $SLUICE_BIN_DIR (set by
// sluice_add_test), else "" .
std::string BinDir();
// $SLUICE_SOURCE_DIR, else "".
std::string SourceDir();

// Whole-file helpers for tests. ReadFile returns "" if unreadable.
std::string ReadFile(const std::string& path);
bool WriteFile(const std::string& path, const std::string& data);

// Bytes of heap currently allocated by this process: the sanitizer
// allocator's count under ASan/TSan, else glibc's mallinfo2() (in-use chunks
// plus mmapped ones). For "does memory grow with N" checks, not absolutes.
size_t HeapInUseBytes();

// Monotonic microseconds (tests only; production code takes a Clock).
int64_t MonoNowUs();

}  // namespace testing
}  // namespace sluice
