// The one seam for time. Components take a Clock& and never read time
// themselves, so tests drive them with FakeClock::Advance().
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice {

class Clock {
 public:
  virtual ~Clock() = default;
  // Microseconds on a monotonic clock (CLOCK_MONOTONIC); for intervals,
  // deadlines and backoff. Thread-safe.
  virtual int64_t NowMonotonicUs() = 0;
  // Microseconds since the Unix epoch (CLOCK_REALTIME); for event
  // timestamps. May jump (gateways without an RTC). Thread-safe.
  virtual int64_t NowWallUs() = 0;
};

// The process's real clocks.
class SystemClock final : public Clock {
 public:
  int64_t NowMonotonicUs() override;
  int64_t NowWallUs() override;
  // A process-wide instance; never destroyed.
  static SystemClock& Get();
};

// A clock that moves only when told. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t wall_us = 1764075600000000, int64_t mono_us = 1000000)
      : wall_us_(wall_us), mono_us_(mono_us) {}
  int64_t NowMonotonicUs() override { return mono_us_.load(); }
  int64_t NowWallUs() override { return wall_us_.load(); }
  // Moves both clocks forward by `us`.
  void Advance(int64_t us) {
    mono_us_ += us;
    wall_us_ += us;
  }
  // Moves only the wall clock (an NTP step, an RTC-less boot).
  void SetWall(int64_t wall_us) { wall_us_ = wall_us; }

 private:
  std::atomic<int64_t> wall_us_;
  std::atomic<int64_t> mono_us_;
};

}  // namespace sluice
