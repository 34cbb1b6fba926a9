#include "common/clock.h"

#include <time.h>

namespace sluice {
namespace {
int64_t Read(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}
}  // namespace

int64_t SystemClock::NowMonotonicUs() { return Read(CLOCK_MONOTONIC); }
int64_t SystemClock::NowWallUs() { return Read(CLOCK_REALTIME); }

SystemClock& SystemClock::Get() {
  static SystemClock* clock = new SystemClock();
  return *clock;
}

}  // namespace sluice
