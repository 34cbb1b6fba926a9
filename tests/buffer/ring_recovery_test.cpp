// Start-up: migrations, integrity check, quarantine of corrupt files, and
// the seq high-water mark across a replaced database.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>

#include "buffer/ring.h"
#include "buffer/internal/seq_file.h"
#include "buffer/internal/store.h"
#include "ring_test_util.h"

#ifndef SLUICE_BUFFER_TEST_DATA
#error "SLUICE_BUFFER_TEST_DATA must name tests/buffer/data"
#endif

namespace sluice {
namespace {

using testing::MakeReading;
using testing::Options;
using testing::TempDir;

constexpr const char* kStamp = "20251125T130000Z";  // FakeClock's default wall

std::unique_ptr<Ring> OpenRing(const RingOptions& o, Clock& clock) {
  auto r = Ring::Open(o, clock);
  REQUIRE(r.ok());
  return std::move(r).value();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

void SmashHeader(const std::string& path) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(0);
  f << std::string(100, 'x');
}

TEST_CASE("golden corrupt files are quarantined, a fresh db started, counted",
          "[recovery]") {
  const char* golden = GENERATE("garbage_header.db", "short_garbage.db",
                                "truncated.db", "corrupt_events_page.db");
  INFO(golden);
  TempDir dir;
  FakeClock clock;
  const std::string src = std::string(SLUICE_BUFFER_TEST_DATA) + "/" + golden;
  REQUIRE(testing::CopyFile(src, dir.db()));
  // A stale -wal beside it goes with it.
  WriteFile(dir.db() + "-wal", "stale");
  // Seqs up to 5,000,000 were handed out before the file went bad.
  WriteFile(dir.path() + "/buffer.seq", "5000000\n");
  RingOptions o = Options(dir.path());
  {
    auto ring = OpenRing(o, clock);
    RingStats s = ring->Stats();
    CHECK(s.corrupt_recoveries == 1);
    CHECK(s.events == 0);
    const std::string moved = dir.db() + ".corrupt-" + kStamp;
    CHECK(testing::FileSize(moved) == testing::FileSize(src));
    // Moved along (SQLite itself discards a WAL this short when it gets to
    // open the file, i.e. when the header was fine).
    CHECK(testing::FileSize(dir.db() + "-wal") != 5);
    if (std::string(golden).find("garbage") != std::string::npos) {
      CHECK(testing::FileSize(moved + "-wal") == 5);
    }
    REQUIRE(ring->Append(MakeReading(1), 0).ok());
    REQUIRE(ring->Flush().ok());
    CHECK(ring->LastSeq() == 5000001);
    REQUIRE(ring->Stop().ok());
  }
  CHECK(testing::QueryInt(dir.db(), "SELECT value FROM counters WHERE name='corrupt_recoveries'") == 1);
  // The fresh file is healthy: reopening neither quarantines nor resets.
  auto ring = OpenRing(o, clock);
  CHECK(ring->Stats().corrupt_recoveries == 1);
  CHECK(ring->LastSeq() == 5000001);
  int quarantined = 0;
  for (const auto& n : testing::ListDir(dir.path())) {
    if (n.rfind("buffer.db.corrupt-", 0) == 0 && n.find("-wal") == std::string::npos) {
      ++quarantined;
    }
  }
  CHECK(quarantined == 1);
}

TEST_CASE("seq continues above every seq handed out when the db is replaced",
          "[recovery]") {
  TempDir dir;
  FakeClock clock;
  RingOptions o = Options(dir.path());
  // One commit of the ten below (at Stop), however slow the machine: the
  // reservation is then exactly 10 + kBlock - 1.
  o.commit_interval_us = 60000000;
  {
    auto ring = OpenRing(o, clock);
    for (int i = 0; i < 10; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
    REQUIRE(ring->Stop().ok());
  }
  SmashHeader(dir.db());
  uint64_t after_first = 0;
  {
    auto ring = OpenRing(o, clock);
    after_first = ring->LastSeq();
    CHECK(after_first >= 10 + SeqReservation::kBlock - 1);
    REQUIRE(ring->Append(MakeReading(0), 0).ok());
    REQUIRE(ring->Stop().ok());
    CHECK(ring->LastSeq() == after_first + 1);
    CHECK(ring->Stats().corrupt_recoveries == 1);
  }
  // Again, a second later: a second quarantined file, counted.
  clock.Advance(1000000);
  SmashHeader(dir.db());
  {
    auto ring = OpenRing(o, clock);
    CHECK(ring->LastSeq() > after_first + 1);
    CHECK(ring->Stats().corrupt_recoveries == 2);
    REQUIRE(ring->Stop().ok());
  }
  // A deleted database (seq file kept) also continues above.
  REQUIRE(::unlink(dir.db().c_str()) == 0);
  uint64_t before = 0;
  {
    std::ifstream f(dir.path() + "/buffer.seq");
    f >> before;
  }
  auto ring = OpenRing(o, clock);
  CHECK(ring->LastSeq() == before);
  REQUIRE(ring->Append(MakeReading(0), 0).ok());
  REQUIRE(ring->Flush().ok());
  CHECK(ring->LastSeq() == before + 1);
}

TEST_CASE("a v1 database migrates to the current schema, keeping data and seq",
          "[recovery]") {
  TempDir dir;
  FakeClock clock;
  // Schema v1 exactly as it shipped, built by hand.
  std::string sql =
      "PRAGMA journal_mode=WAL;"
      "CREATE TABLE events(seq INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL,"
      " sensor TEXT NOT NULL, kind INTEGER NOT NULL,"
      " priority INTEGER NOT NULL, body BLOB NOT NULL);"
      "CREATE INDEX events_evict ON events(priority, seq);"
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
      " WITHOUT ROWID;"
      "CREATE TABLE cursors(upstream TEXT PRIMARY KEY,"
      " acked_seq INTEGER NOT NULL) WITHOUT ROWID;"
      "INSERT INTO meta VALUES('next_seq', 8);"  // 1..7 handed out, 1..4 evicted
      "INSERT INTO cursors VALUES('cloud', 5);"
      "PRAGMA user_version = 1;";
  REQUIRE(testing::ExecSql(dir.db(), sql) == SQLITE_OK);
  uint64_t bytes = 0;
  for (int seq = 5; seq <= 7; ++seq) {
    Record r = MakeReading(seq);
    SetEncodedSeq(&r.body, static_cast<uint64_t>(seq));
    bytes += r.body.size() + r.sensor.size() + kRowOverhead;
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(dir.db().c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO events VALUES(?,?,?,0,0,?)", -1,
                               &st, nullptr) == SQLITE_OK);
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, r.ts_us);
    sqlite3_bind_text(st, 3, r.sensor.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 4, r.body.data(), static_cast<int>(r.body.size()),
                      SQLITE_TRANSIENT);
    CHECK(sqlite3_step(st) == SQLITE_DONE);
    CHECK(sqlite3_finalize(st) == SQLITE_OK);
    CHECK(sqlite3_close(db) == SQLITE_OK);
  }
  RingOptions o = Options(dir.path());
  {
    auto ring = OpenRing(o, clock);
    CHECK(ring->LastSeq() == 7);
    CHECK(ring->Cursor(0) == 5);
    RingStats s = ring->Stats();
    CHECK(s.events == 3);
    CHECK(s.bytes == bytes);
    CHECK(s.first_seq == 5);
    CHECK(s.corrupt_recoveries == 0);
    REQUIRE(ring->Append(MakeReading(8), 0).ok());
    REQUIRE(ring->Flush().ok());
    CHECK(ring->LastSeq() == 8);
    auto all = testing::ReadAll(*ring);
    REQUIRE(all.size() == 4);
    CHECK(all[0].seq == 5);
    CHECK(all[3].seq == 8);
    ring->Ack(0, 6);
    REQUIRE(ring->Stop().ok());
  }
  CHECK(testing::QueryInt(dir.db(), "PRAGMA user_version") == kSchemaVersion);
  CHECK(testing::QueryInt(dir.db(), "SELECT evicted_unsent FROM cursors WHERE upstream='cloud'") == 0);
  CHECK(testing::QueryInt(dir.db(), "SELECT acked_seq FROM cursors WHERE upstream='cloud'") == 6);
  CHECK(testing::QueryInt(dir.db(), "SELECT count(*) FROM counters") >= 0);
  CHECK(testing::FileSize(dir.db() + ".corrupt-" + kStamp) == 0);
}

TEST_CASE("a database from a newer version is refused, not quarantined",
          "[recovery]") {
  TempDir dir;
  FakeClock clock;
  REQUIRE(testing::ExecSql(dir.db(), "CREATE TABLE x(a); PRAGMA user_version = 99;") == SQLITE_OK);
  auto r = Ring::Open(Options(dir.path()), clock);
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  CHECK(testing::QueryInt(dir.db(), "PRAGMA user_version") == 99);
}

TEST_CASE("a foreign SQLite file is quarantined like a corrupt one",
          "[recovery]") {
  TempDir dir;
  FakeClock clock;
  REQUIRE(testing::ExecSql(dir.db(), "CREATE TABLE events(x); INSERT INTO events VALUES(1);") == SQLITE_OK);
  auto ring = OpenRing(Options(dir.path()), clock);
  CHECK(ring->Stats().corrupt_recoveries == 1);
  CHECK(testing::FileSize(dir.db() + ".corrupt-" + kStamp) > 0);
}

TEST_CASE("the integrity check is time-boxed: past the budget, accepted",
          "[recovery]") {
  TempDir dir;
  FakeClock clock;  // never advances: a zero budget expires at once
  RingOptions o = Options(dir.path());
  {
    auto ring = OpenRing(o, clock);
    for (int i = 0; i < 2000; ++i) REQUIRE(ring->Append(MakeReading(i), 0).ok());
    REQUIRE(ring->Stop().ok());
  }
  o.integrity_check_budget_us = 0;
  auto ring = OpenRing(o, clock);
  CHECK(ring->LastSeq() == 2000);
  CHECK(ring->Stats().corrupt_recoveries == 0);
  CHECK(ring->Stats().events == 2000);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST_CASE("a run that ended with the machine going down never reuses a seq",
          "[recovery]") {
  REQUIRE_FALSE(RunMarker::BootId().empty());
  auto durability = GENERATE(Durability::kNormal, Durability::kFull);
  testing::TempDir dir;
  FakeClock clock;
  RingOptions o = testing::Options(dir.path());
  o.durability = durability;
  {
    auto ring = Ring::Open(o, clock);
    REQUIRE(ring.ok());
    for (int i = 0; i < 10; ++i) REQUIRE((*ring)->Append(testing::MakeReading(i), 0).ok());
    REQUIRE((*ring)->Flush().ok());
    // The marker exists while the ring is open...
    CHECK(testing::FileSize(dir.path() + "/buffer.run") > 0);
    REQUIRE((*ring)->Stop().ok());
  }
  // ...and a clean stop removes it: the next start continues exactly.
  CHECK(::access((dir.path() + "/buffer.run").c_str(), F_OK) != 0);
  {
    auto ring = Ring::Open(o, clock);
    REQUIRE(ring.ok());
    CHECK((*ring)->LastSeq() == 10);
    REQUIRE((*ring)->Stop().ok());
  }
  // A marker from another boot: the machine went down while running.
  std::ofstream(dir.path() + "/buffer.run") << "00000000-0000-0000-0000-000000000000\n";
  SeqReservation reservation(dir.path());
  REQUIRE(reservation.Load().ok());
  const uint64_t reserved = reservation.reserved();
  REQUIRE(reserved >= 10);
  auto ring = Ring::Open(o, clock);
  REQUIRE(ring.ok());
  if (durability == Durability::kFull) {
    CHECK((*ring)->LastSeq() == 10);  // fsynced commits: nothing was lost
  } else {
    CHECK((*ring)->LastSeq() == reserved);  // continues above the reservation
  }
  REQUIRE((*ring)->Append(testing::MakeReading(11), 0).ok());
  REQUIRE((*ring)->Flush().ok());
  CHECK((*ring)->LastSeq() == (durability == Durability::kFull ? 11 : reserved + 1));
  REQUIRE((*ring)->Stop().ok());
}

TEST_CASE("a process crash (same boot) continues exactly", "[recovery]") {
  testing::TempDir dir;
  FakeClock clock;
  RingOptions o = testing::Options(dir.path());
  {
    auto ring = Ring::Open(o, clock);
    REQUIRE(ring.ok());
    REQUIRE((*ring)->Append(testing::MakeReading(1), 0).ok());
    REQUIRE((*ring)->Flush().ok());
    REQUIRE((*ring)->Stop().ok());
  }
  // A crash leaves the marker of this boot behind, its marks at the last
  // commit.
  std::ofstream(dir.path() + "/buffer.run")
      << RunMarker::BootId() << "\nr 00000000000000000001\nc 00000000000000000001\n";
  auto ring = Ring::Open(o, clock);
  REQUIRE(ring.ok());
  CHECK((*ring)->LastSeq() == 1);
  REQUIRE((*ring)->Stop().ok());
}

}  // namespace
}  // namespace sluice
