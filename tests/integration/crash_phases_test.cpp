// SIGKILL of a real sluiced in the phases where a kill is rarest and does
// most harm, on each MQTT client (checks after each kill and at the end:
// crash_support.h):
//   - start-up recovery: a large ring (built with sluiced's own write path)
//     left by a kill during ingest, killed again at a random moment between
//     the log lines before and after the buffer opens (its integrity check
//     and WAL recovery); the log tells whether the kill landed there;
//   - migration: the same file rewritten to schema v1 (the layout the first
//     migration step creates), killed between "migrating" and "migrated
//     ... version 2" (the v2 step counts every row); the file must still
//     say v1, and the next start migrates it with seq and cursor kept;
//   - eviction: a 64 KiB ring, so that every commit evicts, half the rounds
//     behind a cut link (evicted unsent: counted, skipped, never a gap
//     elsewhere), killed while evicted_total still grows;
//   - shutdown: SIGTERM, then SIGKILL while stopping: with the broker paused
//     (sluiced waits shutdown_grace for acknowledgements) or right after
//     "stopping".
// Seed: printed; SLUICE_TEST_SEED replays it. Rounds per scenario:
// SLUICE_CRASH_ROUNDS (default 6).
#include <signal.h>
#include <sqlite3.h>  // test oracle: rewrites buffer.db to an earlier schema
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <string>

#include "agent/daemon/ring_sink.h"
#include "buffer/ring.h"
#include "common/clock.h"
#include "tests/integration/crash_support.h"

namespace sluice {
namespace testing {
namespace {

constexpr uint64_t kBigRing = 300000;  // events; the recovery kill window grows with it

// kBigRing readings through the buffer's own write path, "cloud" acked up
// to all but the last 500 (so sluiced forwards little of it).
void FillRing(const std::string& data_dir) {
  RingOptions o;
  o.data_dir = data_dir;
  o.durability = Durability::kOff;
  o.upstreams = {kUpstream};
  auto ring = Ring::Open(o, SystemClock::Get());
  REQUIRE(ring.ok());
  RingSink sink(**ring);  // sluiced's own way in
  Reading r;
  r.unit = "C";
  for (uint64_t i = 0; i < kBigRing; ++i) {
    r.sensor = "crash.fill";
    r.ts_us = 1764075600000000 + static_cast<int64_t>(i);
    r.value = static_cast<double>(i % 1000) * 0.5;
    Status st = sink.Submit(r, 10000000);
    if (!st.ok()) FAIL(st.ToString());
  }
  REQUIRE((*ring)->Flush().ok());
  (*ring)->Ack(0, kBigRing - 500);
  REQUIRE((*ring)->Stop().ok());
}

// Rewrites buffer.db to the v1 layout (what migration step 1 creates).
void DowngradeToV1(const std::string& data_dir) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((data_dir + "/buffer.db").c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(
      db,
      "BEGIN; DROP TABLE gaps; DROP TABLE counters;"
      "CREATE TABLE c1(upstream TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL) WITHOUT ROWID;"
      "INSERT INTO c1 SELECT upstream, acked_seq FROM cursors; DROP TABLE cursors;"
      "ALTER TABLE c1 RENAME TO cursors;"
      "DELETE FROM meta WHERE key IN ('row_count', 'row_bytes');"
      "PRAGMA user_version = 1; COMMIT;",
      nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  CHECK(rc == SQLITE_OK);
  REQUIRE(sqlite3_close(db) == SQLITE_OK);
}

// Killed during ingest (a WAL to recover), then again during start-up,
// then (every other round) during the migration of the file rewritten to v1.
void RunStartupAndMigration(const std::string& client) {
  const uint64_t seed = TestSeed("start-up and migration kills (" + client + ")");
  Dice dice(seed);
  RigOptions o;
  o.client = client;
  CrashRig rig(o);
  FillRing(rig.data_dir());
  rig.SetUp();
  // How long an open and a migration take here, from a run left alone.
  DowngradeToV1(rig.data_dir());
  int64_t t0 = MonoNowUs();
  std::string err;
  REQUIRE(rig.Launch(&err));
  REQUIRE(rig.WaitLog("migrating buffer.db", 30000000));
  const int64_t t_migrating = MonoNowUs() - t0;
  REQUIRE(rig.WaitLog("buffer: opened", 30000000));
  int64_t t_open = MonoNowUs() - t0;
  const int64_t t_migration = t_open - t_migrating;
  REQUIRE(rig.WaitLog("agent: serving", 30000000));
  CHECK(rig.Read().version == 3);
  rig.Kill();
  rig.Stopped("calibration");
  int recovery_kills = 0, migration_kills = 0;
  const int rounds = CrashRounds(6);
  for (int r = 0; r < rounds; ++r) {
    INFO("round " << r << " of seed " << seed << "; open took " << t_open / 1000
                  << " ms, migration " << t_migration / 1000 << " ms");
    // A kill during ingest leaves a WAL to recover.
    // The control socket is logged just before the buffer opens.
    rig.steady().Pause(false);
    REQUIRE(rig.Launch(&err));
    REQUIRE(rig.WaitLog("control socket", 30000000));
    t0 = MonoNowUs();
    REQUIRE(rig.WaitLog("buffer: opened", 30000000));
    t_open = MonoNowUs() - t0;
    REQUIRE(rig.WaitLog("agent: serving", 30000000));
    SleepMs(dice(100, 400));
    rig.Kill();
    rig.steady().Pause(true);
    rig.Stopped("ingest");
    // Killed while the buffer opens.
    REQUIRE(rig.Launch(&err));
    REQUIRE(rig.WaitLog("control socket", 30000000));
    SleepMs(dice(0, static_cast<int>(t_open * 8 / 10000)));
    rig.Kill();
    const bool in_recovery = !rig.LogHas("buffer: opened");
    recovery_kills += in_recovery;
    rig.Stopped(in_recovery ? "start-up recovery" : "start-up, after open");
    if (r % 2 == 1) {
      const RingFile before = rig.Read();
      DowngradeToV1(rig.data_dir());
      REQUIRE(rig.Launch(&err));
      REQUIRE(rig.WaitLog("migrating buffer.db", 30000000));
      SleepMs(dice(0, static_cast<int>(t_migration * 7 / 10000)));
      rig.Kill();
      const bool in_migration = !rig.LogHas("migrated buffer.db schema to version 2");
      migration_kills += in_migration;
      rig.Stopped(in_migration ? "migration" : "after migration");
      const RingFile after = rig.Read();
      if (in_migration) CHECK(after.version == 1);  // the step is one transaction
      CHECK(after.cursor == before.cursor);
      // The next start migrates it, seq and cursor kept.
      rig.Start();
      const RingFile migrated = rig.Read();
      CHECK(migrated.version == 3);
      CHECK(migrated.min_seq == before.min_seq);
      CHECK(migrated.next_seq >= before.next_seq);
      CHECK(migrated.meta_rows == static_cast<int64_t>(migrated.rows));
      rig.Kill();
      rig.Stopped("after a killed migration");
    }
  }
  // Most kills land where they were aimed (the rest still count as kills).
  CHECK(recovery_kills * 2 >= rounds);
  CHECK(migration_kills * 2 >= rounds / 2);
  rig.Finish();
  WARN("start-up and migration kills (" << client << ", seed " << seed << "): " << recovery_kills
                                        << " during start-up recovery (open took " << t_open / 1000
                                        << " ms), " << migration_kills
                                        << " during migration (took " << t_migration / 1000
                                        << " ms); " << rig.Summary());
}

void RunEviction(const std::string& client) {
  const uint64_t seed = TestSeed("eviction kills (" + client + ")");
  Dice dice(seed);
  RigOptions o;
  o.client = client;
  o.extra_buffer = "max_bytes = \"64KiB\"\n";
  o.evicting = true;
  CrashRig rig(o);
  rig.SetUp();
  int evicting_kills = 0;
  const int rounds = CrashRounds(6);
  for (int r = 0; r < rounds; ++r) {
    INFO("round " << r << " of seed " << seed);
    const bool cut = r % 2 == 1;  // a backlog beyond the limit: evicted unsent
    if (cut) rig.proxy(0).Cut();
    rig.steady().Pause(false);
    rig.Start();
    SleepMs(dice(300, 900));
    if (cut) {
      REQUIRE(rig.proxy(0).Restore());
      SleepMs(dice(0, 300));
    }
    const RingFile near_kill = rig.Read();
    SleepMs(dice(20, 100));
    REQUIRE(rig.Alive());
    rig.Kill();
    rig.Stopped(cut ? "eviction, backlog" : "eviction");
    const bool evicting = rig.Read().evicted_total > near_kill.evicted_total;
    evicting_kills += evicting;
  }
  rig.steady().Pause(true);
  CHECK(evicting_kills * 2 >= rounds);
  const RingFile f = rig.Read();
  CHECK(f.evicted_unsent[0] > 0);
  rig.Finish();
  WARN("eviction kills (" << client << ", seed " << seed << "): " << evicting_kills
                          << " while evicting, " << rig.Read().evicted_total << " evicted, "
                          << rig.Read().evicted_unsent[0] << " of them unsent; " << rig.Summary());
}

void RunShutdown(const std::string& client) {
  const uint64_t seed = TestSeed("shutdown kills (" + client + ")");
  Dice dice(seed);
  RigOptions o;
  o.client = client;
  o.shutdown_grace = "1500ms";
  CrashRig rig(o);
  rig.SetUp();
  int stalled = 0, landed = 0, exited = 0;
  const int rounds = CrashRounds(6);
  for (int r = 0; r < rounds; ++r) {
    INFO("round " << r << " of seed " << seed);
    rig.steady().Pause(false);
    rig.Start();
    SleepMs(dice(200, 600));
    const bool pause = r % 2 == 0;  // acknowledgements stop coming
    if (pause) {
      rig.PauseBroker();
      SleepMs(50);
    }
    rig.Signal(SIGTERM);
    REQUIRE(rig.WaitLog("agent: stopping", 10000000));
    SleepMs(pause ? dice(0, 1000) : dice(0, 30));
    if (rig.Alive() && !rig.LogHas("agent: stopped")) {
      ++landed;
      stalled += pause;
      rig.Kill();
      rig.Stopped(pause ? "shutdown, acks pending" : "shutdown");
    } else {
      const auto status = rig.WaitExit(20000000);
      REQUIRE(status);
      CHECK(WIFEXITED(*status));
      CHECK(WEXITSTATUS(*status) == 0);
      ++exited;
      rig.Stopped("clean stop");
    }
  }
  rig.steady().Pause(true);
  CHECK(stalled == (rounds + 1) / 2);  // with acks pending, every kill lands
  rig.Finish();
  WARN("shutdown kills (" << client << ", seed " << seed << "): " << landed << " while stopping ("
                          << stalled << " with acks pending), " << exited
                          << " stopped before the kill; " << rig.Summary());
}

}  // namespace

TEST_CASE("kills during start-up recovery and migration, libmosquitto",
          "[integration][crash][mosquitto]") {
  RunStartupAndMigration("mosquitto");
}

TEST_CASE("kills during start-up recovery and migration, Paho", "[integration][crash][paho]") {
  RunStartupAndMigration("paho");
}

TEST_CASE("kills while evicting, libmosquitto", "[integration][crash][mosquitto]") {
  RunEviction("mosquitto");
}

TEST_CASE("kills while evicting, Paho", "[integration][crash][paho]") { RunEviction("paho"); }

TEST_CASE("kills during shutdown, libmosquitto", "[integration][crash][mosquitto]") {
  RunShutdown("mosquitto");
}

TEST_CASE("kills during shutdown, Paho", "[integration][crash][paho]") { RunShutdown("paho"); }

}  // namespace testing
}  // namespace sluice
