// The ring on a real small file system that someone else fills to the last
// byte (buffer/internal/disk_space.h): the byte limit is held at what fits
// (the ring is not emptied), commits go on, and once the space is back the
// ring grows again and the reserve is re-created. Needs a 16 MiB tmpfs
// (root); otherwise exits 77, which CTest reports as skipped.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "buffer/ring.h"
#include "common/clock.h"
#include "ring_test_util.h"

namespace sluice {
namespace {

using testing::FileSize;
using testing::MakeReading;
using testing::Options;
using testing::TempDir;

uint64_t UsedBytes(const std::string& dir) {
  struct statvfs v;
  if (statvfs(dir.c_str(), &v) != 0) return 0;
  return static_cast<uint64_t>(v.f_blocks - v.f_bfree) * v.f_frsize;
}

// Writes `path` until not even one more byte fits.
void FillToLastByte(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  static char buf[64 << 10];
  for (size_t n = sizeof buf; n > 0;) {
    if (write(fd, buf, n) <= 0 && errno != EINTR) n /= 2;
  }
  close(fd);
}

// Appends `n` readings with long sensor names and commits them.
Status AppendBatch(Ring& ring, int* next, int n) {
  static const std::string sensor = "disk." + std::string(100, 'x');
  for (int i = 0; i < n; ++i) {
    Status s = ring.Append(MakeReading((*next)++, sensor), 1000000);
    if (!s.ok()) return s;
  }
  return ring.Flush();
}

void Scenario(const std::string& data) {
  FakeClock clock;
  RingOptions o = Options(data);
  o.max_bytes = 3u << 20;
  auto opened = Ring::Open(o, clock);
  REQUIRE(opened.ok());
  Ring& ring = **opened;
  const std::string reserve = data + "/buffer.reserve";
  CHECK(FileSize(reserve) >= (1u << 20));

  int next = 0;
  for (int k = 0; k < 400 && UsedBytes(data) < (5u << 20); ++k) {
    REQUIRE(AppendBatch(ring, &next, 200).ok());
  }
  const uint64_t at_fill = ring.Stats().events;
  REQUIRE(at_fill > 2000);
  FillToLastByte(data + "/filler");

  // Commits go on beside the full disk; the ring keeps what fits.
  int ok = 0;
  for (int k = 0; k < 50; ++k) ok += AppendBatch(ring, &next, 100).ok();
  RingStats s = ring.Stats();
  INFO("ring " << at_fill << " events at the fill, " << s.events << " after; full events "
               << s.full_events << ", evicted for the disk " << s.evicted_full);
  CHECK(ok >= 45);
  CHECK(s.evicted_full > 0);
  CHECK(s.events >= at_fill / 8);  // emptied (a 1-byte limit) before the fix
  CHECK(s.failed_events == 0);
  const uint64_t held = s.events;

  // The space comes back: the ring grows again, the reserve returns.
  REQUIRE(unlink((data + "/filler").c_str()) == 0);
  clock.Advance(11000000);
  for (int k = 0; k < 30; ++k) REQUIRE(AppendBatch(ring, &next, 100).ok());
  s = ring.Stats();
  CHECK(s.events >= held + 2500);
  CHECK(FileSize(reserve) >= (1u << 20));
  REQUIRE(ring.Stop().ok());
}

TEST_CASE("a file system filled by someone else: the ring is held, not emptied",
          "[disk_space]") {
  if (geteuid() != 0) {
    std::fprintf(stderr, "SKIP: mounting a tmpfs needs root\n");
    std::exit(77);
  }
  bool skip = false;
  {
    TempDir dir;
    const std::string data = dir.path() + "/data";
    REQUIRE(mkdir(data.c_str(), 0755) == 0);
    if (mount("tmpfs", data.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=16m") != 0) {
      std::fprintf(stderr, "SKIP: cannot mount a tmpfs: %s\n", std::strerror(errno));
      skip = true;
    } else {
      struct Unmount {
        std::string path;
        ~Unmount() { umount2(path.c_str(), MNT_DETACH); }
      } unmount{data};
      Scenario(data);
    }
  }
  if (skip) std::exit(77);
}

}  // namespace
}  // namespace sluice
