#include "tests/support/support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// From <sanitizer/allocator_interface.h>, which Debian's GCC does not ship.
extern "C" size_t __sanitizer_get_current_allocated_bytes(void);  // NOLINT
#define SLUICE_SANITIZER_ALLOCATOR 1
#endif

namespace sluice {
namespace testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/sluice-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "mkdtemp(%s): %s\n", tmpl.c_str(), std::strerror(errno));
    std::abort();
  }
  path_ = tmpl;
}

TempDir::~TempDir() { RemoveRecursively(path_); }

std::string TempDir::Join(const std::string& name) const { return path_ + "/" + name; }

bool RemoveRecursively(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) return errno == ENOENT;
  bool ok = true;
  if (S_ISDIR(st.st_mode)) {
    DIR* dir = opendir(path.c_str());
    if (dir != nullptr) {
      while (struct dirent* e = readdir(dir)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        ok = RemoveRecursively(path + "/" + e->d_name) && ok;
      }
      closedir(dir);
    }
    return rmdir(path.c_str()) == 0 && ok;
  }
  return unlink(path.c_str()) == 0 && ok;
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = -1;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool PortAcceptsConnections(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

bool WaitUntil(const std::function<bool()>& pred, int64_t timeout_us, int64_t poll_us) {
  const int64_t deadline = MonoNowUs() + timeout_us;
  for (;;) {
    if (pred()) return true;
    if (MonoNowUs() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::microseconds(poll_us));
  }
}

std::string BinDir() {
  const char* d = std::getenv("SLUICE_BIN_DIR");
  return d ? d : "";
}

std::string SourceDir() {
  const char* d = std::getenv("SLUICE_SOURCE_DIR");
  return d ? d : "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  return static_cast<bool>(out.flush());
}

size_t HeapInUseBytes() {
#ifdef SLUICE_SANITIZER_ALLOCATOR
  return __sanitizer_get_current_allocated_bytes();
#else
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#endif
}

int64_t MonoNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace testing
}  // namespace sluice

// LeakSanitizer: Paho C 1.3.12 leaks each QoS 1 PUBLISH command that is
// still queued (handed to MQTTAsync_send, not yet written) when a client that
// lost its connection is destroyed: the command, its topic and payload
// copies and Paho's heap-tracking nodes, all allocated under MQTTAsync_send.
// Not fixed yet (see agent_reconnect_memory_test "[memory]"). Matched by
// module: Debian's Paho has no frame pointers, so with ASan's default fast
// unwinder the stack ends at the first Paho frame and `leak:MQTTAsync_send`
// would not match. Our own allocations stay checked, and so do libmosquitto's
// (deliberately not suppressed: the libmosquitto transport destroys its
// client per connection precisely so that nothing queued leaks; without
// mosquitto_destroy LSan reports ~80 KiB per cut in agent_reconnect_memory_test).
extern "C" const char* __lsan_default_suppressions() {  // NOLINT
  return "leak:libpaho-mqtt3as.so\n";
}

// ThreadSanitizer: Debian's Paho libraries are not instrumented, so TSan
// cannot see their atomics (shared_ptr counts released inside them) and
// reports races and a lock-order cycle between Paho C's global mutex and
// async_client's own lock that are Paho-internal. Races with our code stay
// checked (our frames are instrumented).
extern "C" const char* __tsan_default_suppressions() {  // NOLINT
  return "race:libpaho-mqttpp3.so\n"
         "race:libpaho-mqtt3as.so\n"
         "deadlock:libpaho-mqttpp3.so\n"
         "deadlock:libpaho-mqtt3as.so\n";
}
