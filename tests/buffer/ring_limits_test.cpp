// Ring limits: eviction by events and bytes, eviction order, per-upstream
// eviction counts, the bounded file, and a full disk (max_page_count).
#include <catch2/catch.hpp>

#include "buffer/ring.h"
#include "buffer/internal/store.h"
#include "ring_test_util.h"

namespace sluice {
namespace {

using testing::MakeAlert;
using testing::MakeReading;
using testing::Options;
using testing::TempDir;

std::unique_ptr<Ring> OpenRing(const RingOptions& o, Clock& clock) {
  auto r = Ring::Open(o, clock);
  REQUIRE(r.ok());
  return std::move(r).value();
}

uint64_t RowBytes(const Record& r) {
  return r.body.size() + r.sensor.size() + kRowOverhead;
}

TEST_CASE("max_events: oldest evicted first, counted", "[limits]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  o.max_events = 100;
  auto ring = OpenRing(o, clock);
  for (int round = 0; round < 7; ++round) {
    for (int i = 0; i < 50; ++i) REQUIRE(ring->Append(MakeReading(round * 50 + i), 0).ok());
    REQUIRE(ring->Flush().ok());
    CHECK(ring->Stats().events <= 100);
  }
  RingStats s = ring->Stats();
  CHECK(s.events == 100);
  CHECK(s.evicted_total == 250);
  CHECK(s.first_seq == 251);
  CHECK(s.last_seq == 350);
  CHECK(s.first_ts_us == MakeReading(250).ts_us);
  CHECK(testing::QueryInt(dir.db(), "SELECT count(*) FROM events") == 100);
  CHECK(testing::QueryInt(dir.db(), "SELECT min(seq) FROM events") == 251);
  REQUIRE(ring->Stop().ok());
  // Counters and accounting are persisted.
  CHECK(testing::QueryInt(dir.db(), "SELECT value FROM counters WHERE name='evicted_total'") == 250);
  CHECK(testing::QueryInt(dir.db(), "SELECT value FROM meta WHERE key='row_count'") == 100);
  auto again = OpenRing(o, clock);
  CHECK(again->Stats().evicted_total == 250);
  CHECK(again->Stats().events == 100);
  CHECK(again->Stats().first_seq == 251);
}

TEST_CASE("max_bytes: accounted bytes stay under the limit", "[limits]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  const uint64_t row = RowBytes(MakeReading(0));
  o.max_bytes = 50 * row;
  auto ring = OpenRing(o, clock);
  for (int i = 0; i < 200; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
  REQUIRE(ring->Flush().ok());
  RingStats s = ring->Stats();
  CHECK(s.bytes <= o.max_bytes);
  CHECK(s.events == 50);
  CHECK(s.evicted_total == 150);
  CHECK(s.first_seq == 151);
  // The accounting matches the rows: length(body) + length(sensor) + overhead.
  CHECK(testing::QueryInt(dir.db(),
                          "SELECT sum(length(body) + length(sensor) + " +
                              std::to_string(kRowOverhead) + ") FROM events") ==
        static_cast<int64_t>(s.bytes));
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("eviction order: readings before alerts, oldest first", "[limits]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  o.max_events = 10;
  auto ring = OpenRing(o, clock);
  for (int i = 0; i < 5; ++i) REQUIRE(ring->Append(MakeAlert(i), 0).ok());      // 1..5
  for (int i = 0; i < 20; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());   // 6..25
  REQUIRE(ring->Flush().ok());
  auto all = testing::ReadAll(*ring);
  std::vector<uint64_t> seqs;
  for (const auto& e : all) seqs.push_back(e.seq);
  CHECK(seqs == std::vector<uint64_t>{1, 2, 3, 4, 5, 21, 22, 23, 24, 25});

  for (int i = 0; i < 10; ++i) REQUIRE(ring->Append(MakeAlert(100 + i), 0).ok());  // 26..35
  REQUIRE(ring->Flush().ok());
  all = testing::ReadAll(*ring);
  seqs.clear();
  for (const auto& e : all) {
    seqs.push_back(e.seq);
    CHECK(e.kind == static_cast<int>(EventKind::kAlert));
  }
  // All readings went first, then the oldest alerts.
  CHECK(seqs == std::vector<uint64_t>{26, 27, 28, 29, 30, 31, 32, 33, 34, 35});
  CHECK(ring->Stats().evicted_total == 25);
  CHECK(ring->Stats().first_seq == 26);
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("evictions are counted per upstream that had not acked them",
          "[limits]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  o.max_events = 20;
  o.upstreams = {"fast", "slow"};
  {
    auto ring = OpenRing(o, clock);
    for (int i = 0; i < 20; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
    REQUIRE(ring->Flush().ok());
    ring->Ack(0, 12);
    for (int i = 0; i < 10; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
    REQUIRE(ring->Flush().ok());  // evicts 1..10: all acked by "fast"
    RingStats s = ring->Stats();
    CHECK(s.evicted_total == 10);
    CHECK(s.upstreams[0].evicted_unsent == 0);
    CHECK(s.upstreams[1].evicted_unsent == 10);
    for (int i = 0; i < 5; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
    REQUIRE(ring->Flush().ok());  // evicts 11..15: 13, 14, 15 unacked by "fast"
    s = ring->Stats();
    CHECK(s.evicted_total == 15);
    CHECK(s.upstreams[0].evicted_unsent == 3);
    CHECK(s.upstreams[1].evicted_unsent == 15);
    REQUIRE(ring->Stop().ok());
  }
  CHECK(testing::QueryInt(dir.db(), "SELECT evicted_unsent FROM cursors WHERE upstream='slow'") == 15);
  auto ring = OpenRing(o, clock);
  CHECK(ring->Stats().upstreams[0].evicted_unsent == 3);
  CHECK(ring->Stats().upstreams[1].evicted_unsent == 15);
  CHECK(ring->Cursor(0) == 12);
}

TEST_CASE("lowered limits are applied at open", "[limits]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  {
    auto ring = OpenRing(o, clock);
    for (int i = 0; i < 100; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
    REQUIRE(ring->Stop().ok());
  }
  o.max_events = 30;
  auto ring = OpenRing(o, clock);
  CHECK(ring->Stats().events == 30);
  CHECK(ring->Stats().first_seq == 71);
  CHECK(ring->LastSeq() == 100);
}

// The file stays bounded while the ring is filled many times over: live
// data is evicted down to max_bytes in each commit, freed pages are reused,
// and max_page_count (HardCapBytes) is never even reached.
TEST_CASE("the file stays bounded when the ring is filled 8 times over",
          "[limits]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  o.max_bytes = 1 << 20;
  auto ring = OpenRing(o, clock);
  const uint64_t row = RowBytes(MakeReading(0, "sensor.number.00"));
  const int total = static_cast<int>(8 * o.max_bytes / row);
  // Stated bound: 1.5 x max_bytes + 2 MiB for buffer.db (the hard cap), and
  // we expect to stay well below it: 2 x max_bytes.
  const uint64_t bound = 2 * o.max_bytes;
  REQUIRE(bound <= HardCapBytes(o.max_bytes));
  uint64_t max_file = 0, max_wal = 0;
  for (int i = 0; i < total;) {
    for (int j = 0; j < 1000 && i < total; ++j, ++i) {
      char name[32];
      snprintf(name, sizeof(name), "sensor.number.%02d", i % 100);
      REQUIRE(ring->Append(MakeReading(i, name), 1000000).ok());
    }
    REQUIRE(ring->Flush().ok());
    max_file = std::max(max_file, testing::FileSize(dir.db()));  // buffer.db alone
    max_wal = std::max(max_wal, testing::FileSize(dir.db() + "-wal"));
  }
  RingStats s = ring->Stats();
  WARN("max_bytes " << o.max_bytes << ": max file " << max_file << ", max wal "
                    << max_wal << ", rows " << s.events);
  CHECK(s.bytes <= o.max_bytes);
  CHECK(s.evicted_total > 6 * s.events);
  CHECK(s.full_events == 0);
  CHECK(s.evicted_full == 0);
  CHECK(max_file <= bound);
  CHECK(max_wal <= static_cast<uint64_t>(kJournalSizeLimit) + (4 << 20));
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("full disk (max_page_count): evicts harder, keeps running",
          "[limits]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  o.max_bytes = 64ull << 20;             // never reached
  o.max_file_bytes = 512 << 10;          // 128 pages: the "disk"
  o.upstreams = {"cloud"};
  auto ring = OpenRing(o, clock);
  constexpr int kEvents = 20000;
  for (int i = 0; i < kEvents;) {
    for (int j = 0; j < 500; ++j, ++i) REQUIRE(ring->Append(MakeReading(i), 1000000).ok());
    CHECK(ring->Flush().ok());
  }
  RingStats s = ring->Stats();
  CHECK(s.full_events > 0);
  CHECK(s.evicted_full > 0);
  CHECK(s.evicted_full <= s.evicted_total);
  CHECK(s.upstreams[0].evicted_unsent == s.evicted_total);
  CHECK(s.failed_events == 0);
  CHECK(s.last_seq == kEvents);
  CHECK(testing::FileSize(dir.db()) <= o.max_file_bytes);  // buffer.db alone
  CHECK(s.file_bytes >= testing::FileSize(dir.db()));
  // Later commits succeed, and what is left reads back in order.
  for (int i = 0; i < 100; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
  REQUIRE(ring->Flush().ok());
  CHECK(ring->LastSeq() == kEvents + 100);
  auto all = testing::ReadAll(*ring);
  REQUIRE(!all.empty());
  CHECK(all.back().seq == kEvents + 100);
  CHECK(all.size() == ring->Stats().events);
  bool increasing = true;
  for (size_t i = 1; i < all.size(); ++i) increasing &= all[i].seq > all[i - 1].seq;
  CHECK(increasing);
  const uint64_t full_events = ring->Stats().full_events;
  REQUIRE(ring->Stop().ok());
  // Never corrupt.
  CHECK(testing::QueryInt(dir.db(), "SELECT count(*) FROM pragma_quick_check "
                                    "WHERE quick_check = 'ok'") == 1);
  CHECK(testing::QueryInt(dir.db(), "SELECT value FROM counters WHERE name='full_events'") ==
        static_cast<int64_t>(full_events));
}

TEST_CASE("the writer queue is bounded in bytes: a burst waits instead of filling memory",
          "[limits][queue]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  o.commit_interval_us = 60000000;  // nothing is committed while we fill
  o.queue_max_bytes = 16 << 10;
  auto ring = OpenRing(o, clock);
  const Record sample = MakeReading(0, "sensor.with.a.long.name.00");
  const size_t per = sizeof(Record) + sample.body.size() + sample.sensor.size();
  size_t queued = 0;
  while (queued < 10000 && ring->Append(MakeReading(static_cast<int>(queued),
                                                    "sensor.with.a.long.name.00"), 0)
                               .ok()) {
    ++queued;
  }
  INFO(queued << " events of " << per << " B queued under a 16 KiB bound");
  CHECK(queued * per >= o.queue_max_bytes);
  CHECK((queued - 1) * per < o.queue_max_bytes);
  // A waiting producer gets in once the writer commits.
  REQUIRE(ring->Flush().ok());
  CHECK(ring->Append(MakeReading(1), 0).ok());
  // One event larger than the whole bound still fits in an empty queue.
  REQUIRE(ring->Flush().ok());
  Reading big;
  big.sensor = "big";
  big.ts_us = 1764075600000000;
  big.value = 1;
  big.unit = std::string(20000, 'u');
  Record rec = MakeReading(2);
  rec.body = EncodeReading(big);
  rec.sensor = big.sensor;
  CHECK(ring->Append(std::move(rec), 0).ok());
  REQUIRE(ring->Flush().ok());
  CHECK(ring->Stats().last_seq == queued + 2);
}

}  // namespace
}  // namespace sluice
