// The ring's figures for `sluice status` and the watchdog: committed events
// and bytes, the last commit's wall time, the writer thread's heartbeat.
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "buffer/ring.h"
#include "buffer/internal/store.h"
#include "ring_test_util.h"

namespace sluice {
namespace {

TEST_CASE("ring stats: committed events and bytes, last commit, writer heartbeat", "[ring]") {
  testing::TempDir dir;
  FakeClock clock;
  auto opened = Ring::Open(testing::Options(dir.path()), clock);
  REQUIRE(opened.ok());
  std::unique_ptr<Ring> ring = std::move(opened).value();
  RingStats s = ring->Stats();
  CHECK(s.committed_events == 0);
  CHECK(s.last_commit_us == 0);
  uint64_t bytes = 0;
  for (int i = 0; i < 7; ++i) {
    Record r = testing::MakeReading(i);
    bytes += r.body.size() + r.sensor.size() + kRowOverhead;
    REQUIRE(ring->Append(std::move(r), 0).ok());
  }
  REQUIRE(ring->Flush().ok());
  s = ring->Stats();
  CHECK(s.committed_events == 7);
  CHECK(s.committed_bytes == bytes);
  CHECK(s.bytes == bytes);
  CHECK(s.last_commit_us == 1764075600000000);
  // Idle, the writer still goes round its loop every second: 1.5 s after
  // the last commit its idleness drops back below 0.5 s within a few
  // seconds (without the heartbeat it would only grow).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  bool fresh = false;
  for (int i = 0; i < 100 && !fresh; ++i) {
    s = ring->Stats();
    REQUIRE(s.writer_idle_us >= 0);
    fresh = s.writer_idle_us < 500000;
    if (!fresh) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(fresh);
  REQUIRE(ring->Stop().ok());
  CHECK(ring->Stats().writer_idle_us == -1);
}

}  // namespace
}  // namespace sluice
