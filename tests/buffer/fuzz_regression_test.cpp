// Regressions found by the libFuzzer targets of the ring's readers
// (buffer/fuzz_codec.cpp): corrupt rows of buffer.db that `sluice buffer
// check` and the readers must report or skip, never trust or trip over.
// Each case names the corpus file that holds the input the fuzzer found.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "buffer/inspect.h"
#include "ring_test_util.h"

using namespace sluice;
using namespace sluice::testing;

namespace {

// A ring with one good reading, closed, then `rows` (seq, body of seq) put
// straight into its events table, as a damaged or foreign file could hold.
void MakeRingWithRows(const TempDir& dir, const std::vector<int64_t>& seqs) {
  RingOptions o;
  o.data_dir = dir.path();
  auto ring = Ring::Open(o, SystemClock::Get());
  REQUIRE(ring.ok());
  REQUIRE((*ring)->Append(MakeReading(1), 0).ok());
  REQUIRE((*ring)->Stop().ok());
  ring->reset();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(dir.db().c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "INSERT INTO events(seq, ts_us, sensor, kind, priority, body) "
                             "VALUES(?, 1, 's', 0, 0, ?)",
                             -1, &st, nullptr) == SQLITE_OK);
  for (int64_t seq : seqs) {
    std::string body = MakeReading(2).body;
    SetEncodedSeq(&body, static_cast<uint64_t>(seq));
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_blob(st, 2, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
    REQUIRE(sqlite3_step(st) == SQLITE_DONE);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
}

bool HasProblem(const BufferCheck& c, const std::string& text) {
  for (const std::string& p : c.problems) {
    if (p.find(text) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

// buffer/fuzz_corpus/rows_extreme_seq: a row at seq -3 and one at INT64_MAX
// made the seq-continuity arithmetic overflow (INT64_MAX - -3); a seq below
// 1, which the ring never hands out, passed as a good row.
TEST_CASE("buffer check reports rows with a seq below 1 and survives extreme seqs") {
  TempDir dir;
  MakeRingWithRows(dir, {-3, 0, INT64_MAX});
  BufferCheck check;
  REQUIRE(CheckBuffer(dir.path(), true, &check).ok());
  CHECK_FALSE(check.ok());
  CHECK(HasProblem(check, "2 events with a seq below 1 (first: -3)"));
  for (const std::string& c : check.checks) CHECK(c.find("event bodies verify") == std::string::npos);
}

TEST_CASE("buffer check finds nothing wrong with ordinary seqs") {
  TempDir dir;
  MakeRingWithRows(dir, {2, 3});
  BufferCheck check;
  REQUIRE(CheckBuffer(dir.path(), true, &check).ok());
  CHECK_FALSE(HasProblem(check, "seq below 1"));
}
