// SIGKILL of a real sluiced at random moments, on each MQTT client
// (CONTRACT.md "Guarantees"; the checks after each kill and at the end are
// listed in crash_support.h):
//   - ingest: killed while readings stream in;
//   - drain: killed while a backlog built behind a cut link is forwarded;
//   - long: up for 2.5-4 s (a backlog drained while readings stream in), so
//     cursors are saved many times; the cursor kept must cover everything
//     that had arrived 2 s (twice the longest save interval) before the kill;
//   - outage: killed with messages in flight to a broker that stopped
//     answering, which then dies with them;
//   - qos 0: a cut loses one run of seqs at most (what was written before
//     the client noticed), never resent; the rest arrives in order;
//   - two upstreams: one link cut while the other runs, killed during the
//     cut and while the cut one drains after its link came back.
// Seed: printed; SLUICE_TEST_SEED replays it. Rounds per scenario:
// SLUICE_CRASH_ROUNDS (default 8 and 4).
#include <signal.h>

#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/crash_support.h"

namespace sluice {
namespace testing {
namespace {

// Up 2.5-4 s: a burst builds a backlog behind a cut link, the link comes
// back and the backlog drains while readings keep coming. Samples what has
// arrived; after the kill, the saved cursor must cover what had arrived 2 s
// before it, and must have been saved several times.
void LongRound(CrashRig& rig, Dice& dice) {
  rig.proxy(0).Cut();
  rig.steady().Pause(false);
  rig.Start();
  rig.burst().Pause(false);
  SleepMs(dice(600, 1000));
  rig.burst().Pause(true);
  REQUIRE(rig.proxy(0).Restore());
  const int64_t start = MonoNowUs();
  const int64_t kill_at = start + dice(2500, 4000) * 1000LL;
  std::vector<std::pair<int64_t, uint64_t>> arrived;  // (time, highest seq)
  std::vector<uint64_t> saved;                        // distinct cursors seen in buffer.db
  while (MonoNowUs() < kill_at) {
    rig.Feed();
    arrived.emplace_back(MonoNowUs(), rig.tracker(0).MaxSeen());
    RingFile f = rig.Read();
    if (f.ok && (saved.empty() || f.cursor[0] != saved.back())) saved.push_back(f.cursor[0]);
    SleepMs(50);
  }
  REQUIRE(rig.Alive());
  const int64_t killed = MonoNowUs();
  rig.Kill();
  rig.Stopped("long");
  uint64_t old_enough = 0;
  for (const auto& a : arrived) {
    if (a.first <= killed - 2000000) old_enough = a.second;
  }
  INFO("saved cursors during the round: " << saved.size() << ", last " << rig.last_mark(0).cursor);
  CHECK(saved.size() >= 3);
  CHECK(rig.last_mark(0).cursor >= old_enough);
}

// The broker stops answering (paused) while readings keep coming, so
// messages are in flight unacknowledged; sluiced is killed, and the broker
// dies with what it had received but not processed (a link lost together
// with the agent). Nothing unacknowledged may count as delivered: the next
// run sends it again.
void OutageRound(CrashRig& rig, Dice& dice) {
  rig.steady().Pause(false);
  rig.Start();
  SleepMs(dice(100, 400));
  rig.steady().Pause(true);
  // Idle: everything acknowledged, delivered and its cursor saved.
  CHECK(rig.WaitAllSaved(10000000));
  rig.PauseBroker();
  rig.steady().Pause(false);
  SleepMs(dice(100, 400));
  REQUIRE(rig.Alive());
  rig.Kill();
  rig.steady().Pause(true);
  rig.RestartBroker();
  rig.Stopped("outage");
}

void RunKillRounds(const std::string& client) {
  const uint64_t seed = TestSeed("SIGKILL rounds (" + client + ")");
  Dice dice(seed);
  RigOptions o;
  o.client = client;
  CrashRig rig(o);
  rig.SetUp();
  const int rounds = CrashRounds(8);
  for (int r = 0; r < rounds; ++r) {
    INFO("round " << r << " of seed " << seed);
    rig.WriteConfig(r % 2 == 0 ? "normal" : "full");
    if (r % 4 == 2) {
      LongRound(rig, dice);
      continue;
    }
    if (r % 4 == 3) {
      OutageRound(rig, dice);
      continue;
    }
    if (r % 4 == 1) {
      // Drain: a backlog behind a cut link, killed while it is forwarded.
      rig.proxy(0).Cut();
      rig.steady().Pause(false);
      rig.Start();
      SleepMs(dice(300, 700));
      rig.steady().Pause(true);
      const int accepted = rig.proxy(0).accepted();
      REQUIRE(rig.proxy(0).Restore());
      CHECK(WaitUntil([&] { return rig.proxy(0).accepted() > accepted; }, 10000000));
      SleepMs(dice(10, 300));
    } else {
      rig.steady().Pause(false);
      rig.Start();
      SleepMs(dice(50, 700));
    }
    REQUIRE(rig.Alive());
    rig.Kill();
    rig.Stopped(r % 4 == 1 ? "drain" : "ingest");
  }
  rig.Finish();
  WARN("SIGKILL rounds (" << client << ", seed " << seed << "): " << rig.Summary());
}

// Two upstreams through two proxies to one broker: "edge" is cut while
// "cloud" runs; kills land during the cut (every other round) and while
// "edge" drains after its link came back.
void RunTwoUpstreams(const std::string& client) {
  const uint64_t seed = TestSeed("two upstreams (" + client + ")");
  Dice dice(seed);
  RigOptions o;
  o.client = client;
  o.upstreams = 2;
  CrashRig rig(o);
  rig.SetUp();
  const int rounds = CrashRounds(4);
  for (int r = 0; r < rounds; ++r) {
    INFO("round " << r << " of seed " << seed);
    rig.steady().Pause(false);
    rig.Start();
    SleepMs(dice(200, 500));
    rig.proxy(1).Cut();
    rig.Feed();
    const uint64_t cloud_at_cut = rig.tracker(0).MaxSeen();
    SleepMs(dice(300, 900));
    // The other one runs on.
    CHECK(WaitUntil(
        [&] {
          rig.Feed();
          return rig.tracker(0).MaxSeen() > cloud_at_cut + 100;
        },
        10000000));
    if (r % 2 == 0) {
      rig.Kill();
      rig.Stopped("edge cut");
      rig.Start();
      SleepMs(dice(100, 400));
    }
    rig.Feed();  // nothing more reaches "edge" before its link is back
    const uint64_t edge_before = rig.tracker(1).MaxSeen();
    REQUIRE(rig.proxy(1).Restore());
    // The cut one catches up once its link is back.
    CHECK(WaitUntil(
        [&] {
          rig.Feed();
          return rig.tracker(1).MaxSeen() > edge_before;
        },
        10000000));
    SleepMs(dice(0, 300));
    REQUIRE(rig.Alive());
    rig.Kill();
    rig.Stopped("edge draining");
  }
  rig.Finish();
  WARN("two upstreams (" << client << ", seed " << seed << "): " << rig.Summary());
}

// qos = 0 (README "Guarantees", QoS 0): a message counts as delivered once
// written to the socket, so each cut loses at most what was in flight at
// that moment, one run of seqs, never sent again; everything else arrives,
// first sends in order.
void RunQos0Cuts(const std::string& client) {
  RigOptions o;
  o.client = client;
  o.qos = 0;
  CrashRig rig(o);
  rig.SetUp();
  const int cuts = 4;
  rig.steady().Pause(false);
  rig.Start();
  for (int c = 0; c < cuts; ++c) {
    SleepMs(300);
    rig.proxy(0).Cut();
    SleepMs(200);
    REQUIRE(rig.proxy(0).Restore());
  }
  SleepMs(300);
  rig.steady().Pause(true);
  CHECK(rig.WaitAllSaved(10000000));
  rig.Signal(SIGTERM);
  REQUIRE(rig.WaitExit(20000000));
  SleepMs(300);
  rig.Feed();
  const RingFile f = rig.Read();
  REQUIRE(f.ok);
  const SeqTracker& tr = rig.tracker(0);
  const std::vector<uint64_t> missing = tr.Missing(1, f.next_seq - 1);
  size_t runs = 0;
  std::string shown;
  for (size_t i = 0; i < missing.size(); ++i) {
    if (i == 0 || missing[i] != missing[i - 1] + 1) {
      ++runs;
      shown += (i == 0 ? "" : ", ") + std::to_string(missing[i]);
    }
    if (i + 1 == missing.size() || missing[i + 1] != missing[i] + 1) {
      shown += "-" + std::to_string(missing[i]);
    }
  }
  INFO("lost " << missing.size() << " of " << f.next_seq - 1 << " in " << runs << " runs");
  CHECK(runs <= static_cast<size_t>(cuts));
  CHECK(tr.out_of_order() == 0);
  CHECK(tr.reused() == 0);
  CHECK(tr.MaxSeen() == f.next_seq - 1);
  WARN("qos 0 (" << client << "): " << cuts << " cuts lost " << missing.size() << " of "
                 << f.next_seq - 1 << " readings (" << shown << "), " << tr.duplicates()
                 << " duplicates");
}

}  // namespace

TEST_CASE("qos 0: a cut loses only what was in flight then, libmosquitto",
          "[integration][crash][mosquitto]") {
  RunQos0Cuts("mosquitto");
}

TEST_CASE("qos 0: a cut loses only what was in flight then, Paho", "[integration][crash][paho]") {
  RunQos0Cuts("paho");
}

TEST_CASE("SIGKILL rounds during ingest, drain and long runs, libmosquitto",
          "[integration][crash][mosquitto]") {
  RunKillRounds("mosquitto");
}

TEST_CASE("SIGKILL rounds during ingest, drain and long runs, Paho", "[integration][crash][paho]") {
  RunKillRounds("paho");
}

TEST_CASE("two upstreams, one cut while the other runs, libmosquitto",
          "[integration][crash][mosquitto]") {
  RunTwoUpstreams("mosquitto");
}

TEST_CASE("two upstreams, one cut while the other runs, Paho", "[integration][crash][paho]") {
  RunTwoUpstreams("paho");
}

}  // namespace testing
}  // namespace sluice
