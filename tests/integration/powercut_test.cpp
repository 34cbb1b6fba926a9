// Power cuts under a real sluiced (CONTRACT.md "Guarantees": with
// durability = "full" a committed event survives power loss). sluiced runs
// under the power-cut shim (tests/support/powercut.h) while a pusher
// streams readings; the test polls `sluice status --json` (buffer.last_seq:
// what sluiced reported committed, and when), SIGKILLs it at a seeded
// random moment, turns the data dir into what the power cut would have
// left (half of the rounds with the last unsynced write torn), and starts
// sluiced again on it. Every seq reported committed before the cut must
// be in buffer.db, and sluiced must start.
// Seed: printed; SLUICE_TEST_SEED replays it. Rounds: 20, or
// SLUICE_POWERCUT_ROUNDS; the whole run is bounded in time as well.
#include <sqlite3.h>  // test oracle: reads buffer.db read-only to check what is on disk
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <string>

#include "tests/integration/cli_live_util.h"
#include "tests/support/powercut.h"

namespace sluice {
namespace testing {
namespace {

uint64_t Seed() {
  if (const char* s = std::getenv("SLUICE_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

int Rounds() {
  if (const char* s = std::getenv("SLUICE_POWERCUT_ROUNDS")) return std::atoi(s);
  return 20;
}

// buffer.last_seq from `sluice status --json`; false if it did not answer.
bool LastSeq(const std::string& sock, const std::string& scratch, uint64_t* seq) {
  RunResult r = RunCli({"--socket", sock, "status", "--json"}, scratch);
  if (ExitStatus(r.status) != 0) return false;
  JsonLimits limits;
  limits.max_bytes = 64 << 20;
  auto v = ParseJson(r.out, limits);
  if (!v.ok()) return false;
  const JsonValue* n = v->AtPath("$.buffer.last_seq");
  if (!n || !n->is_number()) return false;
  *seq = static_cast<uint64_t>(n->AsNumber());
  return true;
}

TEST_CASE("power cut: durability full loses no reading reported committed", "[powercut]") {
  const uint64_t seed = Seed();
  const int rounds = Rounds();
  const int64_t budget_us = 240 * 1000000LL;  // the whole loop
  std::mt19937_64 rng(seed);
  WARN("power-cut rounds: seed " << seed << " (rerun with SLUICE_TEST_SEED=" << seed << ")");
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  TempDir dir;
  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  spec.durability = "full";
  const std::string push = dir.Join("push.sock");
  spec.sensors = {PushSensor("ingest", "unix://" + push)};
  REQUIRE(WriteFile(dir.Join("sluiced.toml"), spec.ToToml()));
  REQUIRE(::mkdir(spec.data_dir.c_str(), 0700) == 0);
  PowerCut cut(spec.data_dir, dir.Join("shadow"));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));
  d.set_env(cut.Env());

  Pusher pusher(push, "pc.s", 300);
  pusher.Pause(true);
  pusher.Start();
  std::string err;
  const int64_t start = MonoNowUs();
  uint64_t must_have = 0, torn = 0, startup_cuts = 0, write_cuts = 0;
  int done = 0;
  // Every seq up to must_have is in buffer.db (sluiced running).
  auto verify = [&](const std::string& when) {
    DbSnapshot db = ReadBufferDb(spec.data_dir, true);
    INFO(when << ": " << db.error);
    REQUIRE(db.ok);
    std::vector<uint64_t> missing;
    for (uint64_t seq = 1; seq <= must_have; ++seq) {
      if (db.events.count(seq) == 0) missing.push_back(seq);
    }
    INFO(when << ": " << missing.size() << " of seqs 1.." << must_have << " missing, first "
              << (missing.empty() ? 0 : missing[0]) << "; buffer.db max seq " << db.max_seq);
    REQUIRE(missing.empty());
    CHECK(db.max_seq >= must_have);
  };
  for (int r = 0; r < rounds && MonoNowUs() - start < budget_us; ++r, ++done) {
    // Odd rounds: the shim cuts right after a random write (counted from
    // start, so some land in start-up); all rounds: a kill at a random time.
    const uint64_t kill_at_write = r % 2 == 1 ? static_cast<uint64_t>(uniform(1, 800)) : 0;
    const int wait_ms = uniform(100, 1500);
    const bool tear = uniform(0, 1) == 1;
    INFO("round " << r << " of seed " << seed << ": cut after " << wait_ms << " ms"
                  << (kill_at_write ? " or write " + std::to_string(kill_at_write) : "")
                  << (tear ? ", last unsynced write torn" : ""));
    d.set_env(cut.Env(kill_at_write));
    if (!d.Start(&err)) {
      // Only the shim's own cut may stop a start (SIGKILL during start-up).
      INFO(err);
      REQUIRE(kill_at_write > 0);
      REQUIRE(err.find("signal 9") != std::string::npos);
      ++startup_cuts;
    } else {
      if (r > 0) verify("restarted after the cut of round " + std::to_string(r - 1));
      // Ingest; poll what sluiced reports committed until the cut.
      CommitTimeline timeline;
      pusher.Pause(false);
      const int64_t cut_at = MonoNowUs() + wait_ms * 1000LL;
      while (MonoNowUs() < cut_at && d.Alive()) {
        uint64_t seq = 0;
        if (LastSeq(spec.control_socket, dir.path(), &seq)) timeline.Add(MonoNowUs(), seq);
        SleepMs(uniform(0, 30));
      }
      if (!d.Alive()) ++write_cuts;  // cut by the shim
      const int64_t killed_at = MonoNowUs();
      d.Kill();
      pusher.Pause(true);
      must_have = std::max(must_have, timeline.SeqAt(killed_at));
    }
    INFO("reported committed before the cut: seq " << must_have);
    PowerCutOptions options;
    options.tear_last_write = tear;
    PowerCutReport report;
    REQUIRE(cut.Restore(options, &report, &err));
    INFO("durable state: " << report.Describe());
    if (!report.torn_file.empty()) ++torn;
  }
  // The last cut: sluiced starts and has every reading it reported.
  d.set_env(cut.Env());
  REQUIRE(d.Start(&err));
  verify("after the last cut");
  pusher.Stop();
  d.Terminate();
  WARN("power-cut rounds: " << done << " cuts (" << write_cuts << " right after a write, "
                            << startup_cuts << " during start-up), " << torn
                            << " with a torn write; last committed seq " << must_have
                            << "; seed " << seed);
  CHECK(done >= std::min(rounds, 5));
  CHECK(must_have > 0);
}

// After a power cut the kernel has a new boot id, while buffer.run still
// holds the old one: make the restored marker say so.
void MarkRebooted(const std::string& data_dir) {
  const std::string path = data_dir + "/buffer.run";
  std::string text = ReadFile(path);
  if (text.empty()) return;
  const size_t nl = text.find('\n');
  text.replace(0, nl, "00000000-0000-0000-0000-00000000cafe");
  REQUIRE(WriteFile(path, text));
}

// Rows of `data_dir`'s buffer.db with lo < seq <= hi, and whether a
// recorded possible-loss range covers (lo, hi].
struct ReuseCheck {
  int64_t rows = -1;
  bool gap_covers = false;
};
ReuseCheck CheckRange(const std::string& data_dir, uint64_t lo, uint64_t hi) {
  ReuseCheck out;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2((data_dir + "/buffer.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM events WHERE seq > ?1 AND seq <= ?2", -1,
                           &st, nullptr) == SQLITE_OK) {
      sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(lo));
      sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(hi));
      if (sqlite3_step(st) == SQLITE_ROW) out.rows = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM gaps WHERE first_seq <= ?1 AND last_seq >= ?2",
                           -1, &st, nullptr) == SQLITE_OK) {
      sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(lo + 1));
      sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(hi));
      out.gap_covers = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0;
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

TEST_CASE("power cut: durability normal loses at most sync_interval and never reuses a seq",
          "[powercut]") {
  const uint64_t seed = Seed() ^ 0x5eed;
  const int rounds = Rounds();
  const int64_t budget_us = 240 * 1000000LL;
  const int64_t sync_us = 200000;  // sync_interval below
  // A commit reported at T is fsynced by the sync that starts after T: at
  // most sync_interval later, plus the fsync itself and the status poll.
  const int64_t slack_us = 400000;
  std::mt19937_64 rng(seed);
  WARN("normal power-cut rounds: seed " << seed << " (rerun with SLUICE_TEST_SEED="
                                        << (seed ^ 0x5eed) << ")");
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  TempDir dir;
  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  spec.durability = "normal";
  spec.extra_buffer = "sync_interval = \"200ms\"\n";
  const std::string push = dir.Join("push.sock");
  spec.sensors = {PushSensor("ingest", "unix://" + push)};
  REQUIRE(WriteFile(dir.Join("sluiced.toml"), spec.ToToml()));
  REQUIRE(::mkdir(spec.data_dir.c_str(), 0700) == 0);
  PowerCut cut(spec.data_dir, dir.Join("shadow"));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));
  d.set_env(cut.Env());

  Pusher pusher(push, "pc.n", 300);
  pusher.Pause(true);
  pusher.Start();
  std::string err;
  const int64_t start = MonoNowUs();
  // must_survive: reported committed at least sync_interval + slack before
  // a cut. reported: the highest seq ever reported committed (it may have
  // reached an upstream). durable_max: what the last cut left.
  // Seq numbering jumps after every cut (a reboot below durability full),
  // so what must survive is kept as the ranges each round committed.
  std::vector<std::pair<uint64_t, uint64_t>> must_survive_ranges;
  uint64_t must_survive = 0, reported = 0, durable_max = 0, lost_total = 0;
  int done = 0;
  for (int r = 0; r < rounds && MonoNowUs() - start < budget_us; ++r, ++done) {
    const int wait_ms = uniform(300, 2500);
    const bool tear = uniform(0, 1) == 1;
    INFO("round " << r << " of seed " << (seed ^ 0x5eed) << ": cut after " << wait_ms << " ms"
                  << (tear ? ", last unsynced write torn" : ""));
    d.set_env(cut.Env());
    REQUIRE(d.Start(&err));
    CommitTimeline timeline;
    uint64_t base = 0;  // the last seq before this round's first commit
    REQUIRE(LastSeq(spec.control_socket, dir.path(), &base));
    pusher.Pause(false);
    const int64_t cut_at = MonoNowUs() + wait_ms * 1000LL;
    while (MonoNowUs() < cut_at && d.Alive()) {
      uint64_t seq = 0;
      if (LastSeq(spec.control_socket, dir.path(), &seq)) timeline.Add(MonoNowUs(), seq);
      SleepMs(uniform(0, 30));
    }
    const int64_t killed_at = MonoNowUs();
    d.Kill();
    pusher.Pause(true);
    if (r > 0 && reported > durable_max) {
      // The previous cut lost (durable_max, reported]: none of those seqs
      // was handed out again, and the skipped range is recorded.
      ReuseCheck c = CheckRange(spec.data_dir, durable_max, reported);
      INFO("seqs " << durable_max + 1 << ".." << reported << " lost by the previous cut");
      CHECK(c.rows == 0);
      CHECK(c.gap_covers);
    }
    const uint64_t survive = timeline.SeqAt(killed_at - sync_us - slack_us);
    if (survive > base) must_survive_ranges.emplace_back(base + 1, survive);
    must_survive = std::max(must_survive, survive);
    reported = std::max(reported, timeline.last());
    PowerCutOptions options;
    options.tear_last_write = tear;
    PowerCutReport report;
    REQUIRE(cut.Restore(options, &report, &err));
    DbSnapshot db = ReadBufferDb(spec.data_dir, true);
    INFO("durable state: " << report.Describe() << "; " << db.error);
    REQUIRE(db.ok);
    std::vector<uint64_t> missing;
    uint64_t expected = 0;
    for (const auto& range : must_survive_ranges) {
      for (uint64_t seq = range.first; seq <= range.second; ++seq, ++expected) {
        if (db.events.count(seq) == 0) missing.push_back(seq);
      }
    }
    INFO(missing.size() << " of " << expected << " seqs up to " << must_survive
                        << " missing (reported committed "
                        << "more than sync_interval before the cut), first "
                        << (missing.empty() ? 0 : missing[0]) << "; max seq " << db.max_seq);
    REQUIRE(missing.empty());
    durable_max = db.max_seq;
    if (reported > durable_max) lost_total += reported - durable_max;
    MarkRebooted(spec.data_dir);
  }
  d.set_env(cut.Env());
  REQUIRE(d.Start(&err));
  pusher.Pause(false);
  SleepMs(300);
  pusher.Stop();
  d.Terminate();
  if (reported > durable_max) {
    ReuseCheck c = CheckRange(spec.data_dir, durable_max, reported);
    CHECK(c.rows == 0);
    CHECK(c.gap_covers);
  }
  WARN("normal power-cut rounds: " << done << " cuts, " << lost_total
                                   << " reported-committed readings lost within sync_interval; "
                                   << "last must-survive seq " << must_survive << "; seed "
                                   << (seed ^ 0x5eed));
  CHECK(done >= std::min(rounds, 5));
  CHECK(must_survive > 0);
}

}  // namespace
}  // namespace testing
}  // namespace sluice
