// SIGKILL of a real sluiced at random moments (CONTRACT.md "Guarantees"):
// half of the rounds while a pusher streams readings in, half while a
// backlog (built behind a cut link) is being forwarded. Afterwards, once
// everything drained: every committed seq 1..N is upstream with no gap,
// nothing upstream was never committed, no seq was reused (a duplicate's
// payload is byte-identical), seq never went backwards across restarts.
// Duplicates are counted and printed per crash beside the README's bound
// (max_inflight + acks since the last cursor save).
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <random>
#include <string>

#include "tests/integration/it_support.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace testing {
namespace {

const std::string kStatusTopic = std::string("sluice/") + kAgent + "/status";

struct Round {
  int index = 0;
  bool drain = false;     // killed while forwarding a backlog
  int wait_ms = 0;        // from start (ingest) or from restore (drain)
  uint64_t db_max = 0;    // max committed seq after the kill
  uint64_t cursor = 0;    // persisted cursor after the kill
  uint64_t up_max = 0;    // highest seq seen upstream at the kill
  size_t msg_at_kill = 0; // subscriber message count at the kill
};

uint64_t Seed() {
  if (const char* s = std::getenv("SLUICE_IT_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

void RunKillRounds(const std::string& durability, int rounds) {
  const uint64_t seed = Seed();
  std::mt19937_64 rng(seed);
  WARN("SIGKILL rounds (" << durability << "): seed " << seed
                          << " (rerun with SLUICE_IT_SEED=" << seed << ")");
  auto uniform = [&](int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng);
  };

  TempDir dir;
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());

  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  spec.durability = durability;
  spec.max_inflight = 64;
  const std::string sock = dir.Join("push.sock");
  spec.sensors = {SimulatedSensor("sim.temp", "20ms"), PushSensor("ingest", "unix://" + sock)};
  spec.upstream_url = "mqtt://127.0.0.1:" + std::to_string(proxy.port());
  REQUIRE(WriteFile(dir.Join("sluiced.toml"), spec.ToToml()));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));

  Pusher pusher(sock, "crash.s", 2000);
  pusher.Start();
  SeqTracker tr(kStatusTopic);
  std::vector<Round> log;
  uint64_t prev_max = 0, prev_next = 0, prev_reserved = 0;
  for (int r = 0; r < rounds; ++r) {
    Round round;
    round.index = r;
    round.drain = r % 2 == 1;
    if (round.drain) {
      // Backlog behind a cut link, then killed while it is forwarded.
      proxy.Cut();
      pusher.Pause(false);
      REQUIRE(d.Start(&err));
      SleepMs(uniform(300, 700));
      pusher.Pause(true);
      const int accepted = proxy.accepted();
      REQUIRE(proxy.Restore());
      // Forwarding starts once the uplink is back.
      CHECK(WaitUntil([&] { return proxy.accepted() > accepted; }, 10000000));
      round.wait_ms = uniform(10, 300);
    } else {
      pusher.Pause(false);
      REQUIRE(d.Start(&err));
      round.wait_ms = uniform(50, 700);
    }
    SleepMs(round.wait_ms);
    REQUIRE(d.Alive());
    d.Kill();
    round.msg_at_kill = sub.Count();
    sub.WaitFor([&](const std::vector<ReceivedMessage>& m) {
      tr.Feed(m);
      return true;
    }, 0);
    round.up_max = tr.MaxSeen();
    DbSnapshot db = ReadBufferDb(spec.data_dir);
    REQUIRE(db.ok);
    round.db_max = db.max_seq;
    round.cursor = db.cursor;
    const uint64_t reserved = ReadSeqReservation(spec.data_dir);
    INFO("round " << r);
    // Seq never goes backwards or is reset across restarts.
    CHECK(db.max_seq >= prev_max);
    CHECK(db.meta_next_seq >= prev_next);
    CHECK(reserved >= prev_reserved);
    CHECK(reserved >= db.max_seq);
    CHECK(db.meta_next_seq >= db.max_seq);
    CHECK(db.rows == db.max_seq);  // gap-free, nothing evicted
    CHECK(db.cursor <= db.max_seq);
    prev_max = db.max_seq;
    prev_next = db.meta_next_seq;
    prev_reserved = reserved;
    log.push_back(round);
  }
  pusher.Stop();

  // Drain: a sluiced without sensors forwards what is left.
  ConfigSpec drain = spec;
  drain.sensors = {PushSensor("ingest", "unix://" + dir.Join("idle.sock"))};
  REQUIRE(WriteFile(dir.Join("drain.toml"), drain.ToToml()));
  REQUIRE(proxy.Restore());
  Sluiced drainer(dir.Join("drain.toml"), dir.Join("sluiced.log"));
  REQUIRE(drainer.Start(&err));
  DbSnapshot before = ReadBufferDb(spec.data_dir);
  REQUIRE(before.ok);
  const uint64_t n = before.max_seq;
  const bool covered = tr.WaitCovers(sub, 1, n, 120000000);
  // And the drainer's own resends are acknowledged and the cursor saved.
  CHECK(WaitUntil([&] { return ReadBufferDb(spec.data_dir).cursor >= n; }, 30000000, 50000));
  const int status = drainer.Terminate();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  sub.WaitFor([&](const std::vector<ReceivedMessage>& m) {
    tr.Feed(m);
    return false;
  }, 500000);  // late duplicates

  DbSnapshot db = ReadBufferDb(spec.data_dir, true);
  REQUIRE(db.ok);
  // Per crash: duplicates that arrived after it, beside the bound.
  uint64_t bound_total = 0;
  std::printf("SIGKILL rounds, durability %s, seed %llu, max_inflight %d\n", durability.c_str(),
              static_cast<unsigned long long>(seed), spec.max_inflight);
  std::printf("%5s %6s %7s %9s %9s %9s %6s %6s\n", "round", "phase", "wait_ms", "db_max",
              "cursor", "up_max", "dups", "bound");
  for (size_t i = 0; i < log.size(); ++i) {
    const Round& rd = log[i];
    const size_t to = i + 1 < log.size() ? log[i + 1].msg_at_kill : SIZE_MAX;
    const uint64_t dups = tr.DuplicatesFrom(rd.msg_at_kill, to);
    const uint64_t since_save = rd.up_max > rd.cursor ? rd.up_max - rd.cursor : 0;
    const uint64_t bound = static_cast<uint64_t>(spec.max_inflight) + since_save;
    bound_total += bound;
    std::printf("%5d %6s %7d %9llu %9llu %9llu %6llu %6llu\n", rd.index,
                rd.drain ? "drain" : "ingest", rd.wait_ms,
                static_cast<unsigned long long>(rd.db_max),
                static_cast<unsigned long long>(rd.cursor),
                static_cast<unsigned long long>(rd.up_max), static_cast<unsigned long long>(dups),
                static_cast<unsigned long long>(bound));
    if (dups > bound) {
      WARN("round " << rd.index << ": " << dups << " duplicates above the bound " << bound);
    }
  }
  std::fflush(stdout);
  WARN("SIGKILL rounds (" << durability << "): " << rounds << " rounds, committed seq 1.." << db.max_seq
                          << ", distinct upstream " << tr.Distinct() << ", duplicates "
                          << tr.duplicates() << " (sum of per-crash bounds " << bound_total
                          << "), out-of-order first arrivals " << tr.out_of_order()
                          << ", reconnects " << proxy.accepted() - 1);

  auto missing = tr.Missing(1, n);
  INFO("missing " << missing.size() << " first " << (missing.empty() ? 0 : missing.front()));
  REQUIRE(covered);
  CHECK(missing.empty());
  CHECK(db.max_seq == n);            // the drainer committed nothing new
  CHECK(db.rows == db.max_seq);      // gap-free ring, nothing evicted
  CHECK(db.meta_next_seq == n + 1);  // persisted high-water mark
  CHECK(ReadSeqReservation(spec.data_dir) >= n);
  CHECK(db.cursor == n);
  CHECK(tr.MaxSeen() == n);          // nothing upstream that was never committed
  CHECK(tr.bad_payloads() == 0);
  CHECK(tr.reused() == 0);           // a seq always carries the same event
  size_t mismatched = 0;
  for (const auto& kv : tr.events()) {
    auto it = db.events.find(kv.first);
    if (it == db.events.end() || it->second.sensor != kv.second.sensor ||
        it->second.ts_us != kv.second.ts_us) {
      ++mismatched;
    }
  }
  CHECK(mismatched == 0);
  CHECK(tr.Distinct() == n);
}

}  // namespace

TEST_CASE("SIGKILL rounds during ingest and drain, durability normal", "[integration][crash]") {
  RunKillRounds("normal", 20);
}

TEST_CASE("SIGKILL rounds during ingest and drain, durability full", "[integration][crash]") {
  RunKillRounds("full", 10);
}

}  // namespace testing
}  // namespace sluice
