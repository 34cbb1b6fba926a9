// The ring's write path: seq, restarts, group commit, backpressure,
// cursors, concurrent readers, Stop.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

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

TEST_CASE("seq is 1,2,3... gap-free, in the body too, and survives restarts",
          "[ring]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  {
    auto ring = OpenRing(o, clock);
    CHECK(ring->LastSeq() == 0);
    for (int i = 0; i < 10; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
    REQUIRE(ring->Flush().ok());
    CHECK(ring->LastSeq() == 10);
    REQUIRE(ring->Stop().ok());
  }
  {
    auto ring = OpenRing(o, clock);
    CHECK(ring->LastSeq() == 10);  // exactly from meta, no gap
    for (int i = 0; i < 5; ++i) REQUIRE(ring->Append(MakeAlert(i), 0).ok());
    REQUIRE(ring->Flush().ok());
    CHECK(ring->LastSeq() == 15);
    auto all = testing::ReadAll(*ring);
    REQUIRE(all.size() == 15);
    for (size_t i = 0; i < all.size(); ++i) {
      CHECK(all[i].seq == i + 1);
      CHECK(testing::BodySeq(all[i].body) == i + 1);
    }
    CHECK(all[0].sensor == "boiler.temp");
    CHECK(all[14].sensor == "overheat");
    CHECK(all[14].kind == static_cast<int>(EventKind::kAlert));
    RingStats s = ring->Stats();
    CHECK(s.events == 15);
    CHECK(s.first_seq == 1);
    CHECK(s.last_seq == 15);
    CHECK(s.first_ts_us == all[0].ts_us);
    CHECK(s.last_ts_us == all[14].ts_us);
    CHECK(s.file_bytes > 0);
    REQUIRE(ring->Stop().ok());
  }
  // The reservation file is ahead of every seq handed out.
  CHECK(testing::FileSize(dir.path() + "/buffer.seq") > 0);
  // Inspectable with plain SQLite.
  CHECK(testing::QueryInt(dir.db(), "SELECT count(*) FROM events") == 15);
  CHECK(testing::QueryInt(dir.db(), "SELECT value FROM meta WHERE key='next_seq'") == 16);
  CHECK(testing::QueryInt(dir.db(), "PRAGMA user_version") == kSchemaVersion);
  CHECK(testing::QueryInt(dir.db(), "SELECT count(*) FROM pragma_journal_mode "
                                    "WHERE journal_mode='wal'") == 1);
}

TEST_CASE("Append rejects bodies that are not encoded events", "[ring]") {
  TempDir dir;
  FakeClock clock;
  auto ring = OpenRing(Options(dir.path()), clock);
  Record bad;
  bad.sensor = "x";
  bad.body = "not a flatbuffer";
  CHECK(ring->Append(bad, 0).code() == StatusCode::kInvalidArgument);
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("group commit: many Appends, few commits", "[ring]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  o.commit_interval_us = 200000;  // 200 ms
  auto ring = OpenRing(o, clock);
  uint64_t before = ring->Stats().commits;
  std::vector<Record> recs;
  for (int i = 0; i < 5000; ++i) recs.push_back(MakeReading(i));
  for (auto& r : recs) REQUIRE(ring->Append(std::move(r), 0).ok());
  REQUIRE(ring->Flush().ok());
  RingStats s = ring->Stats();
  CHECK(s.last_seq == 5000);
  CHECK(s.commits - before <= 10);
  CHECK(s.commits - before >= 1);
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("backpressure: a full queue waits, then refuses; only a producer counts a drop",
          "[ring]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  o.queue_capacity = 4;
  o.commit_interval_us = 60000000;  // the writer only commits when asked
  auto ring = OpenRing(o, clock);
  for (int i = 0; i < 4; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
  CHECK(ring->Append(MakeReading(4), 0).code() == StatusCode::kUnavailable);
  CHECK(ring->Append(MakeReading(5), 20000).code() == StatusCode::kUnavailable);
  // A refusal is not a loss (a stream producer waits and resubmits); the
  // producers that give up say so.
  CHECK(ring->Stats().dropped == 0);
  ring->CountDropped(2);
  CHECK(ring->Stats().dropped == 2);
  CHECK(ring->LastSeq() == 0);

  Status waited;
  std::thread producer([&] { waited = ring->Append(MakeReading(6), 30000000); });
  REQUIRE(ring->Flush().ok());  // commits 4, making room
  producer.join();
  CHECK(waited.ok());
  CHECK(ring->Stats().dropped == 2);
  REQUIRE(ring->Stop().ok());
  CHECK(ring->LastSeq() == 5);
  CHECK(ring->Append(MakeReading(7), 0).code() == StatusCode::kUnavailable);
}

TEST_CASE("Stop commits what is queued and is idempotent", "[ring]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  o.commit_interval_us = 60000000;
  {
    auto ring = OpenRing(o, clock);
    for (int i = 0; i < 100; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
    CHECK(ring->LastSeq() == 0);
    REQUIRE(ring->Stop().ok());
    CHECK(ring->LastSeq() == 100);
    REQUIRE(ring->Stop().ok());
    CHECK(ring->WaitForCommit(100, 1000000) == 100);
    CHECK(ring->Flush().ok());
  }
  auto ring = OpenRing(o, clock);
  CHECK(ring->LastSeq() == 100);
  CHECK(testing::ReadAll(*ring).size() == 100);
}

TEST_CASE("WaitForCommit returns once a later seq is committed", "[ring]") {
  TempDir dir;
  FakeClock clock;
  auto ring = OpenRing(Options(dir.path()), clock);
  std::atomic<int> failures{0};
  std::thread producer([&] {
    for (int i = 0; i < 3; ++i) {
      if (!ring->Append(MakeReading(i), 0).ok()) ++failures;
    }
  });
  uint64_t seen = 0;
  for (int i = 0; i < 300 && seen < 3; ++i) seen = ring->WaitForCommit(seen, 100000);
  producer.join();
  CHECK(failures == 0);
  CHECK(seen == 3);
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("cursors: forward only, persisted, new upstreams start at 0", "[ring]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  o.upstreams = {"cloud", "backup"};
  {
    auto ring = OpenRing(o, clock);
    for (int i = 0; i < 10; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
    REQUIRE(ring->Flush().ok());
    ring->Ack(0, 7);
    ring->Ack(0, 3);  // never backwards
    ring->Ack(1, 2);
    ring->Ack(5, 9);  // unknown index: ignored
    CHECK(ring->Cursor(0) == 7);
    CHECK(ring->Cursor(1) == 2);
    RingStats s = ring->Stats();
    REQUIRE(s.upstreams.size() == 2);
    CHECK(s.upstreams[0].name == "cloud");
    CHECK(s.upstreams[0].acked_seq == 7);
    REQUIRE(ring->Stop().ok());
  }
  CHECK(testing::QueryInt(dir.db(), "SELECT acked_seq FROM cursors WHERE upstream='cloud'") == 7);
  o.upstreams = {"backup", "cloud", "new"};
  {
    auto ring = OpenRing(o, clock);
    CHECK(ring->Cursor(0) == 2);
    CHECK(ring->Cursor(1) == 7);
    CHECK(ring->Cursor(2) == 0);
    ring->Ack(1, 4);
    CHECK(ring->Cursor(1) == 7);
    // With no new events the writer still saves a moved cursor (about
    // every second); wait for it, bounded.
    ring->Ack(2, 9);
    int64_t saved = -1;
    for (int i = 0; i < 100 && saved != 9; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      saved = testing::QueryInt(dir.db(), "SELECT acked_seq FROM cursors WHERE upstream='new'");
    }
    CHECK(saved == 9);
    REQUIRE(ring->Stop().ok());
  }
}

TEST_CASE("a reader reads beside the writer, in order and without gaps",
          "[ring]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  o.commit_interval_us = 1000;
  auto ring = OpenRing(o, clock);
  constexpr int kEvents = 20000;
  std::atomic<int> failures{0};
  std::thread producer([&] {
    for (int i = 0; i < kEvents; ++i) {
      Status s = ring->Append(i % 100 == 0 ? MakeAlert(i) : MakeReading(i), 5000000);
      if (!s.ok()) ++failures;
    }
  });
  auto reader = ring->NewReader();
  REQUIRE(reader.ok());
  std::vector<StoredEvent> batch;
  uint64_t after = 0;
  bool ordered = true;
  for (int i = 0; i < 100000 && after < kEvents; ++i) {
    batch.clear();
    REQUIRE((*reader)->ReadAfter(after, 512, &batch).ok());
    for (const auto& e : batch) {
      if (e.seq != after + 1 || testing::BodySeq(e.body) != e.seq) ordered = false;
      after = e.seq;
    }
    if (batch.empty()) ring->WaitForCommit(after, 100000);
  }
  producer.join();
  CHECK(failures == 0);
  CHECK(ordered);
  CHECK(after == kEvents);
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("a reader skips and counts rows whose body is corrupt", "[ring]") {
  TempDir dir;
  FakeClock clock;
  auto ring = OpenRing(Options(dir.path()), clock);
  for (int i = 0; i < 5; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
  REQUIRE(ring->Flush().ok());
  REQUIRE(testing::ExecSql(dir.db(), "UPDATE events SET body = x'00ff00ff' "
                                     "WHERE seq IN (2, 3)") == SQLITE_OK);
  auto reader = ring->NewReader();
  REQUIRE(reader.ok());
  std::vector<StoredEvent> out;
  REQUIRE((*reader)->ReadAfter(0, 2, &out).ok());
  REQUIRE(out.size() == 2);  // max_events counts good rows
  CHECK(out[0].seq == 1);
  CHECK(out[1].seq == 4);
  CHECK(ring->Stats().corrupt_rows == 2);
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("RingReader::Open reads without a running ring", "[ring]") {
  TempDir dir;
  FakeClock clock;
  CHECK(RingReader::Open(dir.path()).status().code() == StatusCode::kNotFound);
  {
    auto ring = OpenRing(Options(dir.path()), clock);
    for (int i = 0; i < 3; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
    REQUIRE(ring->Stop().ok());
  }
  auto reader = RingReader::Open(dir.path());
  REQUIRE(reader.ok());
  std::vector<StoredEvent> out;
  REQUIRE((*reader)->ReadAfter(1, 10, &out).ok());
  REQUIRE(out.size() == 2);
  CHECK(out[0].seq == 2);
}

TEST_CASE("every durability level commits", "[ring]") {
  for (Durability d : {Durability::kOff, Durability::kNormal, Durability::kFull}) {
    TempDir dir;
    FakeClock clock;
    RingOptions o = Options(dir.path());
    o.durability = d;
    auto ring = OpenRing(o, clock);
    for (int i = 0; i < 50; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
    REQUIRE(ring->Stop().ok());
    CHECK(testing::QueryInt(dir.db(), "SELECT count(*) FROM events") == 50);
  }
}

}  // namespace
}  // namespace sluice
