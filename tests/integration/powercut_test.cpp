// Power cuts under a real sluiced (CONTRACT.md "Guarantees"): with
// durability = "full" a committed event survives power loss; "normal"
// loses at most the commits of the last sync_interval; with every mode the
// daemon starts again, seqs never go back and are never reused, and a
// quarantined database is counted.
//
// sluiced runs under the power-cut shim (tests/support/powercut.h) with a
// push listener and one upstream (a real mosquitto behind a TcpProxy). Each
// round plays one phase — ingest (link down), drain (link up, backlog
// going out), eviction (max_events far below what is stored), checkpoint
// (the cut lands inside a write to buffer.db itself, i.e. a WAL
// checkpoint) or shutdown (SIGTERM, then the cut inside the closing
// checkpoint or at a random moment of the stop) — while the test polls
// what sluiced reports committed (`sluice status --json` buffer.last_seq).
// The cut is a SIGKILL at a seeded random moment or right after a random
// write (some land in start-up recovery); the data dir then becomes what
// the power cut would have left (half of the rounds with the last unsynced
// write torn) and the boot id changes, as after a real reboot.
// At the end the link comes back and every stored seq must reach the
// broker, first sends in seq order, no seq ever carrying two payloads.
//
// Seed: printed; SLUICE_TEST_SEED replays it. Rounds: 200 over the three
// modes (45 % full, 35 % normal, 20 % off), or SLUICE_POWERCUT_ROUNDS; each
// mode is bounded in time as well.
#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>  // test oracle: reads buffer.db read-only to check what is on disk
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <string>

#include "tests/integration/cli_live_util.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/powercut.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace testing {
namespace {

constexpr const char* kStatusTopic = "sluice/it-gw/status";

// This mode's share of SLUICE_POWERCUT_ROUNDS (default 200).
int Rounds(int percent) {
  int total = 200;
  if (const char* s = std::getenv("SLUICE_POWERCUT_ROUNDS")) total = std::atoi(s);
  return std::max(1, total * percent / 100);
}

enum class Phase { kIngest, kDrain, kEvict, kCheckpoint, kShutdown };
constexpr Phase kPhases[] = {Phase::kIngest, Phase::kDrain, Phase::kEvict, Phase::kCheckpoint,
                             Phase::kShutdown};
const char* PhaseName(Phase p) {
  switch (p) {
    case Phase::kIngest: return "ingest";
    case Phase::kDrain: return "drain";
    case Phase::kEvict: return "eviction";
    case Phase::kCheckpoint: return "checkpoint";
    case Phase::kShutdown: return "shutdown";
  }
  return "?";
}

struct StatusView {
  uint64_t last_seq = 0;
  uint64_t corrupt_recoveries = 0;
};
// Reads `sluice status --json`; false if sluiced did not answer.
bool ReadStatus(const std::string& sock, const std::string& scratch, StatusView* out) {
  RunResult r = RunCli({"--socket", sock, "status", "--json"}, scratch);
  if (ExitStatus(r.status) != 0) return false;
  JsonLimits limits;
  limits.max_bytes = 64 << 20;
  auto v = ParseJson(r.out, limits);
  if (!v.ok()) return false;
  const JsonValue* seq = v->AtPath("$.buffer.last_seq");
  const JsonValue* corrupt = v->AtPath("$.buffer.corrupt_recoveries");
  if (!seq || !seq->is_number() || !corrupt || !corrupt->is_number()) return false;
  out->last_seq = static_cast<uint64_t>(seq->AsNumber());
  out->corrupt_recoveries = static_cast<uint64_t>(corrupt->AsNumber());
  return true;
}

// Quarantined databases in data_dir (buffer.db.corrupt-*, not their -wal/-shm).
uint64_t QuarantinedFiles(const std::string& data_dir) {
  uint64_t n = 0;
  if (DIR* d = ::opendir(data_dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      auto ends = [&](const std::string& s) {
        return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
      };
      if (name.rfind("buffer.db.corrupt-", 0) == 0 && !ends("-wal") && !ends("-shm")) ++n;
    }
    ::closedir(d);
  }
  return n;
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

// Rows of `data_dir`'s buffer.db with lo < seq <= hi, and whether the
// recorded possible-loss ranges cover (lo, hi].
struct ReuseCheck {
  int64_t rows = -1;
  bool gap_covers = false;
  std::string gaps;  // every recorded range, "first..last; " (diagnostics)
};

std::string LogTail(const std::string& log, size_t n) {
  return log.size() <= n ? log : log.substr(log.size() - n);
}
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
    // Covered by the union of the recorded ranges: one start may record
    // its skip next to an earlier one whose seqs a later cut lost.
    uint64_t next = lo + 1;  // the first seq of (lo, hi] not covered yet
    if (sqlite3_prepare_v2(db, "SELECT first_seq, last_seq FROM gaps ORDER BY first_seq", -1, &st,
                           nullptr) == SQLITE_OK) {
      while (sqlite3_step(st) == SQLITE_ROW) {
        const uint64_t first = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
        const uint64_t last = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
        if (first <= next && last >= next) next = last + 1;
        out.gaps += std::to_string(first) + ".." + std::to_string(last) + "; ";
      }
    }
    out.gap_covers = next > hi;
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return out;
}

struct Mode {
  std::string durability;
  int rounds = 0;
  int64_t budget_us = 0;  // the whole loop
  // What a cut may lose of what sluiced reported committed: full: nothing
  // (may_lose_us = 0); normal: what it reported within sync_interval (plus
  // the fsync and the status poll) before the cut; off: anything (-1).
  int64_t may_lose_us = 0;
};

struct Tally {
  int rounds = 0, startup_cuts = 0, torn = 0, quarantined = 0;
  int per_phase[5] = {0, 0, 0, 0, 0};
  int shim_per_phase[5] = {0, 0, 0, 0, 0};  // cut by the shim right after a write
  uint64_t lost = 0;  // reported committed, gone after a cut (normal, off)
};

// seed: the run's (printed, SLUICE_TEST_SEED); salt: this mode's.
void RunPowerCuts(const Mode& mode, uint64_t seed, uint64_t salt) {
  std::mt19937_64 rng(seed ^ salt);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  TempDir dir;
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  SeqTracker tracker(kStatusTopic);
  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());
  proxy.Cut();
  bool link_up = false;

  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  spec.durability = mode.durability;
  spec.upstream_url = "mqtt://127.0.0.1:" + std::to_string(proxy.port());
  spec.shutdown_grace = "2s";
  const std::string push = dir.Join("push.sock");
  spec.sensors = {PushSensor("ingest", "unix://" + push)};
  REQUIRE(::mkdir(spec.data_dir.c_str(), 0700) == 0);
  PowerCut cut(spec.data_dir, dir.Join("shadow"));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));

  Pusher slow(push, "pc.s", 300), fast(push, "pc.f", 3000);
  slow.Pause(true);
  fast.Pause(true);
  slow.Start();
  fast.Start();

  // What must survive: per round, the seqs (base, survive] reported early
  // enough (seq numbering may jump after a cut). evict_floor: seqs below it
  // may have been evicted. reported: the highest seq ever reported
  // committed (it may have reached the broker). durable_max: the highest
  // seq the last cut left on disk.
  std::vector<std::pair<uint64_t, uint64_t>> must_survive;
  uint64_t evict_floor = 0, reported = 0, durable_max = 0;
  Tally tally;

  auto write_config = [&](Phase phase) {
    spec.extra_buffer = "sync_interval = \"200ms\"\n";
    if (phase == Phase::kEvict) spec.extra_buffer += "max_events = 400\n";
    REQUIRE(WriteFile(dir.Join("sluiced.toml"), spec.ToToml()));
  };
  auto set_link = [&](bool up) {
    if (up && !link_up) REQUIRE(proxy.Restore());
    if (!up && link_up) proxy.Cut();
    link_up = up;
  };
  // Every must-survive seq is on disk (sluiced stopped or running).
  auto verify_durable = [&](const DbSnapshot& db, const std::string& when) {
    std::vector<uint64_t> missing;
    uint64_t expected = 0;
    for (const auto& range : must_survive) {
      for (uint64_t seq = std::max(range.first, evict_floor); seq <= range.second; ++seq) {
        ++expected;
        if (db.events.count(seq) == 0) missing.push_back(seq);
      }
    }
    INFO(when << ": " << missing.size() << " of " << expected
              << " seqs reported committed early enough are missing, first "
              << (missing.empty() ? 0 : missing[0]) << "; buffer.db holds " << db.min_seq << ".."
              << db.max_seq << ", eviction may have taken seqs below " << evict_floor);
    REQUIRE(missing.empty());
  };
  // Right after a start: no seq the last cut lost was handed out again.
  auto verify_no_reuse = [&](const std::string& when) {
    if (reported <= durable_max) return;
    ReuseCheck c = CheckRange(spec.data_dir, durable_max, reported);
    INFO(when << ": seqs " << durable_max + 1 << ".." << reported
              << " were reported committed and lost by the cut");
    INFO("possible-loss ranges recorded: " << c.gaps << "; buffer.seq "
                                           << ReadFile(spec.data_dir + "/buffer.seq")
                                           << "; sluiced log tail: " << LogTail(d.Log(), 1500));
    CHECK(c.rows == 0);
    CHECK(c.gap_covers);
  };

  const int64_t start = MonoNowUs();
  // This round's reported commits: (round_base, round_reported].
  uint64_t round_base = 0, round_reported = 0;
  for (int r = 0; r < mode.rounds && MonoNowUs() - start < mode.budget_us; ++r) {
    const Phase phase = kPhases[r % 5];
    ++tally.rounds;
    ++tally.per_phase[r % 5];
    write_config(phase);
    set_link(phase == Phase::kDrain);
    uint64_t kill_at_write = 0;
    std::string kill_file;
    if (phase == Phase::kIngest && uniform(0, 1) == 1) {
      kill_at_write = static_cast<uint64_t>(uniform(1, 800));  // some land in start-up
    } else if (phase == Phase::kCheckpoint) {
      kill_at_write = static_cast<uint64_t>(uniform(1, 40));
      kill_file = "buffer.db";
    } else if (phase == Phase::kShutdown && uniform(0, 1) == 1) {
      kill_at_write = static_cast<uint64_t>(uniform(1, 10));
      kill_file = "buffer.db";
    }
    const int wait_ms = phase == Phase::kCheckpoint ? uniform(400, 2500) : uniform(150, 1200);
    const bool tear = uniform(0, 1) == 1;
    round_base = round_reported = 0;
    INFO(mode.durability << " round " << r << " (" << PhaseName(phase) << ") of seed " << seed
                         << ": cut after " << wait_ms << " ms"
                         << (kill_at_write ? " or write " + std::to_string(kill_at_write) +
                                                 (kill_file.empty() ? "" : " to " + kill_file)
                                           : "")
                         << (tear ? ", last unsynced write torn" : ""));
    d.set_env(cut.Env(kill_at_write, kill_file));
    StatusView st;
    if (!d.Start(&err)) {
      // Only the shim's own cut may stop a start (SIGKILL during start-up).
      INFO(err);
      REQUIRE(kill_at_write > 0);
      REQUIRE(err.find("signal 9") != std::string::npos);
      ++tally.startup_cuts;
      ++tally.shim_per_phase[r % 5];
    } else if (!ReadStatus(spec.control_socket, dir.path(), &st)) {
      REQUIRE(kill_at_write > 0);  // cut right after "serving"
      REQUIRE(!d.Alive());
      ++tally.shim_per_phase[r % 5];
    } else {
      verify_no_reuse("start of round " + std::to_string(r));
      CHECK(st.corrupt_recoveries == QuarantinedFiles(spec.data_dir));
      const uint64_t base = st.last_seq;
      CHECK(base >= std::min(durable_max, reported));
      CommitTimeline timeline;
      timeline.Add(MonoNowUs(), base);
      Pusher& pusher = phase == Phase::kEvict || phase == Phase::kCheckpoint ? fast : slow;
      pusher.Pause(false);
      const int64_t cut_at = MonoNowUs() + wait_ms * 1000LL;
      while (MonoNowUs() < cut_at && d.Alive()) {
        StatusView now;
        if (ReadStatus(spec.control_socket, dir.path(), &now)) timeline.Add(MonoNowUs(), now.last_seq);
        SleepMs(uniform(0, 30));
      }
      pusher.Pause(true);
      if (phase == Phase::kShutdown && d.Alive()) {
        ::kill(d.pid(), SIGTERM);
        // The cut lands in the closing checkpoint (kill_file) or at a
        // random moment of the stop.
        const int64_t until = MonoNowUs() + (kill_file.empty() ? uniform(0, 150) : 3000) * 1000LL;
        while (MonoNowUs() < until && d.Alive()) SleepMs(2);
      }
      // Died by itself of SIGKILL: the shim's cut (not a clean stop).
      if (!d.Alive() && WIFSIGNALED(d.wait_status()) && WTERMSIG(d.wait_status()) == SIGKILL) {
        ++tally.shim_per_phase[r % 5];
      }
      const int64_t killed_at = MonoNowUs();
      d.Kill();
      if (mode.may_lose_us >= 0) {
        const uint64_t survive = timeline.SeqAt(killed_at - mode.may_lose_us);
        if (survive > base) must_survive.emplace_back(base + 1, survive);
      }
      reported = std::max(reported, timeline.last());
      round_base = base;
      round_reported = timeline.last();
    }
    PowerCutOptions options;
    options.tear_last_write = tear;
    PowerCutReport report;
    REQUIRE(cut.Restore(options, &report, &err));
    if (!report.torn_file.empty()) ++tally.torn;
    INFO("durable state: " << report.Describe());
    DbSnapshot db = ReadBufferDb(spec.data_dir, true);
    if (mode.durability != "off") {
      INFO(db.error);
      REQUIRE(db.ok);
    }
    if (db.ok) {
      if (phase == Phase::kEvict) evict_floor = std::max(evict_floor, db.min_seq);
      verify_durable(db, "after the cut");
      durable_max = db.max_seq;
    } else {
      durable_max = 0;  // the next start quarantines it
      ++tally.quarantined;
    }
    // Lost: reported this round, not on disk, not taken by eviction.
    for (uint64_t seq = std::max(round_base, db.ok && db.rows > 0 ? db.min_seq - 1 : 0) + 1;
         seq <= round_reported; ++seq) {
      if (!db.ok || db.events.count(seq) == 0) ++tally.lost;
    }
    MarkRebooted(spec.data_dir);
  }

  // The last cut: sluiced starts with everything it must have; the link
  // comes back and every stored seq reaches the broker.
  write_config(Phase::kDrain);
  set_link(true);
  d.set_env(cut.Env());
  REQUIRE(d.Start(&err));
  verify_no_reuse("after the last cut");
  StatusView st;
  REQUIRE(ReadStatus(spec.control_socket, dir.path(), &st));
  CHECK(st.corrupt_recoveries == QuarantinedFiles(spec.data_dir));
  verify_durable(ReadBufferDb(spec.data_dir, true), "after the last cut");
  // A little more ingest: what comes after the last cut is delivered too.
  slow.Pause(false);
  REQUIRE(WaitUntil([&] {
    StatusView now;
    return ReadStatus(spec.control_socket, dir.path(), &now) && now.last_seq > st.last_seq + 50;
  }, 20000000, 50000));
  slow.Pause(true);
  SleepMs(200);
  DbSnapshot db = ReadBufferDb(spec.data_dir, true);
  REQUIRE(db.ok);
  // Seq numbering jumps after a cut below durability full: what must
  // arrive is what is stored (above the eviction floor), not a range.
  auto next = db.events.lower_bound(evict_floor);  // the first stored seq not seen yet
  const bool covered = sub.WaitFor([&](const std::vector<ReceivedMessage>& m) {
    tracker.Feed(m);
    while (next != db.events.end() && tracker.Seen(next->first)) ++next;
    return next == db.events.end();
  }, 60000000);
  std::vector<uint64_t> missing;
  for (auto it = db.events.lower_bound(evict_floor); it != db.events.end(); ++it) {
    if (!tracker.Seen(it->first)) missing.push_back(it->first);
  }
  INFO(missing.size() << " of " << db.rows << " stored seqs (" << db.min_seq << ".." << db.max_seq
                      << ") never reached the broker, first " << (missing.empty() ? 0 : missing[0]));
  REQUIRE(covered);
  CHECK(tracker.reused() == 0);
  CHECK(tracker.out_of_order() == 0);
  CHECK(tracker.bad_payloads() == 0);
  slow.Stop();
  fast.Stop();
  d.Terminate();
  std::string phases;
  for (int p = 0; p < 5; ++p) {
    phases += std::string(p ? ", " : "") + PhaseName(kPhases[p]) + " " +
              std::to_string(tally.per_phase[p]) + " (" + std::to_string(tally.shim_per_phase[p]) +
              " right after a write)";
  }
  WARN(mode.durability << " power-cut rounds: " << tally.rounds << " cuts: " << phases << "; "
                       << tally.startup_cuts << " during start-up, "
                       << tally.torn << " with a torn write, " << tally.quarantined
                       << " left a database to quarantine; " << tally.lost
                       << " reported-committed readings lost; " << tracker.Distinct()
                       << " seqs delivered, " << tracker.duplicates()
                       << " duplicates; seed " << seed);
  CHECK(tally.rounds >= std::min(mode.rounds, 10));
  CHECK(reported > 0);
  if (mode.durability == "full") CHECK(tally.lost == 0);
}

TEST_CASE("power cut: durability full loses no reading reported committed",
          "[powercut][full]") {
  RunPowerCuts({"full", Rounds(45), 240 * 1000000LL, 0}, TestSeed("full power-cut rounds"), 0);
}

// A commit reported at T is fsynced by the sync that starts after T: at
// most sync_interval (200 ms) later, plus the fsync and the status poll.
TEST_CASE("power cut: durability normal loses at most sync_interval and never reuses a seq",
          "[powercut][normal]") {
  RunPowerCuts({"normal", Rounds(35), 200 * 1000000LL, 600000},
               TestSeed("normal power-cut rounds"), 0x5eed);
}

TEST_CASE("power cut: durability off starts again and never reuses a seq", "[powercut][off]") {
  RunPowerCuts({"off", Rounds(20), 120 * 1000000LL, -1}, TestSeed("off power-cut rounds"),
               0x0ff);
}

}  // namespace
}  // namespace testing
}  // namespace sluice
