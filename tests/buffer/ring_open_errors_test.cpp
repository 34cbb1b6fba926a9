// A buffer that cannot be opened says what and why (the OS's reason), and a
// failed open logs no second, misleading error about files it never made.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/buffer/ring_test_util.h"

using namespace sluice;
using sluice::testing::TempDir;

namespace {

// Runs `fn` with stderr (where the log goes) captured; returns the text.
template <typename Fn>
std::string CaptureStderr(const std::string& file, Fn fn) {
  std::fflush(stderr);
  int saved = dup(STDERR_FILENO);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  dup2(fd, STDERR_FILENO);
  ::close(fd);
  fn();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

// Hidden ([.]): run by its own CTest entry, which treats exit 77 as
// skipped. As root it needs a read-only tmpfs mount (root ignores modes);
// otherwise a 0555 directory does.
TEST_CASE("ring open: a read-only data_dir names the OS's reason", "[.readonly]") {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  REQUIRE(mkdir(data.c_str(), 0755) == 0);
  bool mounted = false;
  if (geteuid() == 0) {
    if (mount("tmpfs", data.c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0) {
      std::fprintf(stderr, "SKIP: root cannot mount a read-only tmpfs here: %s\n",
                   std::strerror(errno));
      std::exit(77);
    }
    mounted = true;
  } else {
    REQUIRE(chmod(data.c_str(), 0555) == 0);
  }
  FakeClock clock;
  std::string msg;
  std::string log = CaptureStderr(dir.path() + "/log", [&] {
    auto ring = Ring::Open(sluice::testing::Options(data), clock);
    msg = ring.ok() ? "opened" : ring.status().message();
  });
  if (mounted) umount2(data.c_str(), MNT_DETACH);
  chmod(data.c_str(), 0755);
  INFO(msg);
  INFO(log);
  CHECK(msg.find(data + "/buffer") != std::string::npos);
  CHECK(msg.find(mounted ? "Read-only file system" : "Permission denied") != std::string::npos);
  CHECK(log.find("unlink") == std::string::npos);
}

TEST_CASE("ring open: a data_dir that is a file fails with the reason and no close error") {
  TempDir dir;
  const std::string data = dir.path() + "/file";
  REQUIRE(std::ofstream(data).good());
  FakeClock clock;
  std::string msg;
  std::string log = CaptureStderr(dir.path() + "/log", [&] {
    auto ring = Ring::Open(sluice::testing::Options(data), clock);
    REQUIRE_FALSE(ring.ok());
    msg = ring.status().message();
  });
  INFO(msg);
  INFO(log);
  CHECK(msg.find("Not a directory") != std::string::npos);
  CHECK(log.find("buffer.run") == std::string::npos);
}
