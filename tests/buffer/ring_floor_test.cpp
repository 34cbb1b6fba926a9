// The promises a lost or damaged file must not break: seq never goes back
// (the floor), a deleted buffer.db loses nothing, a failing commit holds
// what it could not commit, and counters mean what they say.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include "buffer/ring.h"
#include "buffer/internal/seq_file.h"
#include "common/clock.h"
#include "ring_test_util.h"

namespace sluice {
namespace {

// A process crash, as the next start sees it: every file of the data dir
// exactly as it is now (the page cache survives a kill -9), copied while
// the ring is open and idle (flushed, nothing appended since).
void SnapshotCrash(const std::string& from, const std::string& to) {
  for (const std::string& name : testing::ListDir(from)) {
    if (name == "buffer.db-shm") continue;  // rebuilt from the WAL
    REQUIRE(testing::CopyFile(from + "/" + name, to + "/" + name));
  }
}

std::unique_ptr<Ring> OpenRing(const RingOptions& o, Clock& clock) {
  auto ring = Ring::Open(o, clock);
  REQUIRE(ring.ok());
  return std::move(ring).value();
}

void AppendN(Ring& ring, int from, int n) {
  for (int i = from; i < from + n; ++i) REQUIRE(ring.Append(testing::MakeReading(i), 0).ok());
  REQUIRE(ring.Flush().ok());
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

// Starts a ring on `dir`, commits `n` readings and leaves a crash snapshot
// of it in `crashed`; returns the last committed seq.
uint64_t CrashAfter(int n, const std::string& dir, const std::string& crashed, Clock& clock) {
  RingOptions o = testing::Options(dir);
  auto ring = OpenRing(o, clock);
  AppendN(*ring, 0, n);
  const uint64_t last = ring->LastSeq();
  SnapshotCrash(dir, crashed);
  REQUIRE(ring->Stop().ok());
  return last;
}

TEST_CASE("a crash with the database and WAL intact continues without a gap", "[floor]") {
  testing::TempDir dir, crashed;
  FakeClock clock;
  const uint64_t last = CrashAfter(500, dir.path(), crashed.path(), clock);
  REQUIRE(last == 500);
  auto ring = OpenRing(testing::Options(crashed.path()), clock);
  CHECK(ring->LastSeq() == 500);
  CHECK(ring->Stats().gaps.ranges == 0);
  AppendN(*ring, 500, 1);
  CHECK(ring->LastSeq() == 501);
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("a crash whose WAL is lost never reuses a seq", "[floor]") {
  const bool garbage = GENERATE(false, true);
  testing::TempDir dir, crashed;
  FakeClock clock;
  const uint64_t last = CrashAfter(500, dir.path(), crashed.path(), clock);
  const std::string wal = crashed.path() + "/buffer.db-wal";
  REQUIRE(testing::FileSize(wal) > 0);  // the commits are still in the WAL
  if (garbage) {
    WriteText(wal, std::string(8192, 'x'));
  } else {
    REQUIRE(::unlink(wal.c_str()) == 0);
  }
  auto ring = OpenRing(testing::Options(crashed.path()), clock);
  // Continues above everything that may have been handed out...
  CHECK(ring->LastSeq() >= last);
  AppendN(*ring, 500, 1);
  CHECK(ring->LastSeq() > last);
  // ...and says so: a possible-loss range covering the lost commits.
  const RingStats st = ring->Stats();
  REQUIRE(st.gaps.ranges == 1);
  CHECK(st.gaps.last_first <= last);
  CHECK(st.gaps.last_last >= last);
  CHECK(st.gaps.last_reason.find("WAL") != std::string::npos);
  // On the same boot the run marker's marks bound it exactly: the range is
  // what the crash lost, not the whole reservation.
  CHECK(st.gaps.last_last == last);
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("a corrupt database with a damaged seq file never reuses a seq", "[floor]") {
  // (b) garbage buffer.seq, (c) a lowered buffer.seq, (d) buffer.seq deleted.
  const int damage = GENERATE(0, 1, 2);
  testing::TempDir dir;
  FakeClock clock;
  RingOptions o = testing::Options(dir.path());
  o.seq_reserve_block = 1000;
  uint64_t last = 0;
  {
    auto ring = OpenRing(o, clock);
    AppendN(*ring, 0, 2500);  // the reservation has moved past 2500
    last = ring->LastSeq();
    REQUIRE(ring->Stop().ok());
  }
  const std::string seq = dir.path() + "/buffer.seq";
  if (damage == 0) WriteText(seq, "garbage\n");
  if (damage == 1) WriteText(seq, "100\n");
  if (damage == 2) REQUIRE(::unlink(seq.c_str()) == 0);
  WriteText(dir.db(), std::string(8192, 'z'));  // corrupt: quarantined at open
  auto ring = OpenRing(o, clock);
  CHECK(ring->LastSeq() >= last);
  AppendN(*ring, 0, 1);
  CHECK(ring->LastSeq() > last);
  const RingStats st = ring->Stats();
  CHECK(st.corrupt_recoveries == 1);
  CHECK(st.gaps.ranges == 1);
  REQUIRE(ring->Stop().ok());
  // The damaged copy was rewritten: both copies agree again.
  SeqReservation reservation(dir.path());
  REQUIRE(reservation.Load().ok());
  CHECK_FALSE(reservation.damaged());
  CHECK(reservation.reserved() > last);
}

TEST_CASE("a damaged seq file beside an intact database keeps numbering exact", "[floor]") {
  testing::TempDir dir;
  FakeClock clock;
  RingOptions o = testing::Options(dir.path());
  {
    auto ring = OpenRing(o, clock);
    AppendN(*ring, 0, 10);
    REQUIRE(ring->Stop().ok());
  }
  WriteText(dir.path() + "/buffer.seq", "not a number\n");
  auto ring = OpenRing(o, clock);
  CHECK(ring->LastSeq() == 10);
  CHECK(ring->Stats().gaps.ranges == 0);
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("buffer.db deleted while open loses nothing", "[file]") {
  testing::TempDir dir;
  FakeClock clock;
  RingOptions o = testing::Options(dir.path());
  auto ring = OpenRing(o, clock);
  auto reader = ring->NewReader();
  REQUIRE(reader.ok());
  AppendN(*ring, 0, 100);
  REQUIRE(::unlink(dir.db().c_str()) == 0);
  clock.Advance(2000000);  // past the writer's once-a-second identity check
  AppendN(*ring, 100, 50);
  // The writer noticed, moved the open buffer into a new buffer.db...
  CHECK(testing::FileSize(dir.db()) > 0);
  CHECK(ring->Stats().file_replacements == 1);
  AppendN(*ring, 150, 50);
  // ...and a reader opened before follows it.
  std::vector<StoredEvent> got;
  REQUIRE((*reader)->ReadAfter(0, 1000, &got).ok());
  CHECK(got.size() == 200);
  reader->reset();
  REQUIRE(ring->Stop().ok());
  ring.reset();
  // Everything committed, before and after the deletion, survives a restart.
  auto again = OpenRing(o, clock);
  std::vector<StoredEvent> all = testing::ReadAll(*again);
  REQUIRE(all.size() == 200);
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i].seq == i + 1);
  CHECK(again->Stats().file_replacements == 1);
  REQUIRE(again->Stop().ok());
}

TEST_CASE("buffer.db replaced by another file while open loses nothing", "[file]") {
  testing::TempDir dir, other;
  FakeClock clock;
  {
    auto o2 = testing::Options(other.path());
    auto ring2 = OpenRing(o2, clock);
    AppendN(*ring2, 0, 7);
    REQUIRE(ring2->Stop().ok());
  }
  RingOptions o = testing::Options(dir.path());
  auto ring = OpenRing(o, clock);
  AppendN(*ring, 0, 100);
  REQUIRE(::rename(other.db().c_str(), dir.db().c_str()) == 0);
  clock.Advance(2000000);
  AppendN(*ring, 100, 10);
  CHECK(ring->Stats().file_replacements == 1);
  REQUIRE(ring->Stop().ok());
  ring.reset();
  auto again = OpenRing(o, clock);
  CHECK(testing::ReadAll(*again).size() == 110);
  CHECK(again->LastSeq() == 110);
  REQUIRE(again->Stop().ok());
}

TEST_CASE("a failing commit holds what it could not commit and retries", "[failing]") {
  testing::TempDir dir;
  FakeClock clock;
  RingOptions o = testing::Options(dir.path());
  o.seq_reserve_block = 10;
  o.queue_capacity = 200;
  auto ring = OpenRing(o, clock);
  AppendN(*ring, 0, 5);
  // Storage refuses: the seq floor cannot be written (as on a data dir
  // made unwritable, or a failing card), so nothing can be committed.
  const std::string blocker = dir.path() + "/buffer.floor.tmp";
  REQUIRE(::mkdir(blocker.c_str(), 0700) == 0);
  for (int i = 5; i < 105; ++i) REQUIRE(ring->Append(testing::MakeReading(i), 0).ok());
  CHECK_FALSE(ring->Flush().ok());
  RingStats st = ring->Stats();
  CHECK(st.commit_failing_since_us != 0);
  CHECK(st.held_events == 100);
  CHECK(!st.last_commit_error.empty());
  CHECK(ring->LastSeq() == 5);
  // Held events count against the queue: producers are held back.
  int accepted = 0;
  for (int i = 105; i < 400; ++i) {
    if (ring->Append(testing::MakeReading(i), 0).ok()) ++accepted;
  }
  CHECK(accepted <= 100);
  CHECK(ring->Stats().held_events + accepted <= o.queue_capacity + 100);
  // Refusals are not drops: nobody gave up on an event yet.
  CHECK(ring->Stats().dropped == 0);
  // Storage comes back: everything held is committed, in order, no gap.
  REQUIRE(::rmdir(blocker.c_str()) == 0);
  const uint64_t want = 5 + 100 + static_cast<uint64_t>(accepted);
  for (int i = 0; i < 300 && ring->LastSeq() < want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(ring->LastSeq() == want);
  st = ring->Stats();
  CHECK(st.commit_failing_since_us == 0);
  CHECK(st.held_events == 0);
  CHECK(st.failed_events == 0);
  std::vector<StoredEvent> all = testing::ReadAll(*ring);
  REQUIRE(all.size() == want);
  for (size_t i = 0; i < all.size(); ++i) CHECK(all[i].seq == i + 1);
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("dropped counts only events a producer gave up on", "[counters]") {
  testing::TempDir dir;
  FakeClock clock;
  RingOptions o = testing::Options(dir.path());
  o.queue_capacity = 4;
  o.commit_interval_us = 60000000;  // the queue stays full
  auto ring = OpenRing(o, clock);
  for (int i = 0; i < 4; ++i) REQUIRE(ring->Append(testing::MakeReading(i), 0).ok());
  CHECK_FALSE(ring->Append(testing::MakeReading(4), 1000).ok());
  CHECK(ring->Stats().dropped == 0);
  ring->CountDropped(1);
  CHECK(ring->Stats().dropped == 1);
  REQUIRE(ring->Stop().ok());
}

TEST_CASE("durability normal fsyncs committed events within sync_interval", "[sync]") {
  testing::TempDir dir;
  FakeClock clock;
  RingOptions o = testing::Options(dir.path());
  o.durability = Durability::kNormal;
  o.sync_interval_us = 50000;
  auto ring = OpenRing(o, clock);
  AppendN(*ring, 0, 20);
  for (int i = 0; i < 200 && ring->Stats().synced_seq < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(ring->Stats().synced_seq == 20);
  CHECK(ring->Stats().last_sync_us != 0);
  REQUIRE(ring->Stop().ok());
}

}  // namespace
}  // namespace sluice
