// The harness of the SIGKILL rounds (crash_test.cpp, crash_phases_test.cpp):
// one Mosquitto broker; per upstream a loopback proxy (to cut its link), a
// subscriber on the upstream's own topic prefix and a SeqTracker; a push
// listener fed by two Pushers (steady and burst); a sluiced started,
// signalled and killed at moments the tests choose.
//
// After every stop (Stopped(): a kill, or a clean exit) it checks what
// CONTRACT.md "Guarantees" promises of the files left behind:
//   - seq never goes back (max seq, meta next_seq, the reservation) and no
//     seq is left possibly lost (a kill on the same boot is always sure);
//   - nothing committed is lost except what is counted evicted: rows +
//     evicted_total = next_seq - 1, the ring is one run of seqs, and every
//     seq an upstream received is in buffer.db or below its oldest row;
//   - a saved cursor never runs ahead of its upstream: every seq at or below
//     it arrived, unless it was evicted before it was sent;
// and records, per upstream, the cursor saved at that stop and how many seqs
// the upstream had received above it. Finish() drains everything, stops
// sluiced with SIGTERM and checks, per stop and upstream:
//   - the duplicates that arrived between this stop and the next are all
//     above the cursor saved at this stop, and number at most the seqs the
//     upstream had received above it (what was sent but whose
//     acknowledgement was not saved yet) plus max_inflight per reconnect;
//   - first sends are in seq order, and skip only seqs evicted unsent;
//   - every committed seq arrived, none was reused (same payload), nothing
//     arrived that was never committed.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tests/integration/it_support.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace testing {

// Rounds of a scenario: $SLUICE_CRASH_ROUNDS if set, else `fallback`.
int CrashRounds(int fallback);

// Seeded random choices of a scenario.
class Dice {
 public:
  explicit Dice(uint64_t seed) : rng_(seed) {}
  int operator()(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

 private:
  std::mt19937_64 rng_;
};

struct RigOptions {
  std::string client = "mosquitto";  // the upstreams' `client`
  int upstreams = 1;                 // "cloud" (topics u0/...), "edge" (u1/...)
  int max_inflight = 64;
  int qos = 1;                       // 0: no stop checks, no Finish
  std::string extra_buffer;          // raw [buffer] lines (max_bytes, ...)
  std::string shutdown_grace = "1s";
  int steady_rate = 2000;            // readings/s of the steady pusher
  int burst_rate = 20000;            // and of the burst one
  bool evicting = false;             // the ring may evict unsent seqs
};

// One upstream at one stop.
struct StopMark {
  std::string what;       // the phase the stop landed in
  size_t msg = 0;         // subscriber messages when it settled
  uint64_t cursor = 0;    // the cursor buffer.db kept
  uint64_t at_risk = 0;   // distinct seqs received above it
  int accepted = 0;       // connections the proxy had accepted
};

// What the stop checks read from buffer.db (read-only, one snapshot).
struct RingFile {
  bool ok = false;
  std::string error;
  int64_t version = 0;    // PRAGMA user_version
  uint64_t rows = 0, min_seq = 0, max_seq = 0, next_seq = 0;
  uint64_t evicted_total = 0, gap_seqs = 0;
  int64_t meta_rows = -1;  // meta row_count (schema v2 on), -1 if absent
  std::vector<uint64_t> cursor, evicted_unsent;  // per upstream
};

class CrashRig {
 public:
  explicit CrashRig(RigOptions options);
  ~CrashRig();

  // Broker, proxies, subscribers, config (durability normal), pushers
  // (paused). REQUIREs that each part started.
  void SetUp();
  // Rewrites the config; the next Launch uses it.
  void WriteConfig(const std::string& durability);

  const RigOptions& options() const { return options_; }
  const TempDir& dir() const { return dir_; }
  std::string data_dir() const { return dir_.Join("data"); }
  MosquittoBroker& broker() { return broker_; }
  TcpProxy& proxy(int i) { return *ups_[static_cast<size_t>(i)]->proxy; }
  SeqTracker& tracker(int i) { return ups_[static_cast<size_t>(i)]->tracker; }
  Pusher& steady() { return *steady_; }
  Pusher& burst() { return *burst_; }
  // Pauses/resumes the broker (SIGSTOP/SIGCONT); Stopped() resumes it.
  void PauseBroker();
  void ResumeBroker();
  // The broker dies (SIGKILL) with whatever it had received but not
  // processed, and comes back on the same port; returns once every
  // subscriber is subscribed again (a probe on its status topic arrived).
  void RestartBroker();

  // sluiced: Launch starts it without waiting; Start also waits until it
  // serves (REQUIRE).
  bool Launch(std::string* error = nullptr);
  void Start();
  // Waits (bounded, polling every ms) until this run's log holds `needle`.
  bool WaitLog(const std::string& needle, int64_t timeout_us);
  bool LogHas(const std::string& needle) const;
  std::string RunLog() const;
  bool Alive();
  void Signal(int sig);
  // SIGKILL and reap.
  void Kill();
  // The exit status once it ended within timeout_us.
  std::optional<int> WaitExit(int64_t timeout_us);

  // Waits (bounded) until every upstream's saved cursor is at the last
  // committed seq: all acknowledged and saved.
  bool WaitAllSaved(int64_t timeout_us);
  // Feeds every tracker what its subscriber received so far.
  void Feed();
  // After sluiced ended: resumes the broker, waits until the subscribers
  // are quiet, runs the stop checks (top of file) and records the marks.
  void Stopped(const std::string& what);
  const StopMark& last_mark(int upstream) const {
    return ups_[static_cast<size_t>(upstream)]->marks.back();
  }
  int stops() const { return stops_; }

  // Starts a sluiced with no readings coming in, waits until every
  // upstream has every committed seq (but the evicted unsent) and every
  // cursor is saved at the last seq, stops it with SIGTERM (exit 0) and runs
  // the final checks (top of file). Prints one line per stop and upstream.
  void Finish();
  // "stops N, duplicates D (max per stop M, its bound B)" per upstream.
  std::string Summary() const;

  RingFile Read() const;

 private:
  struct Upstream {
    std::string name, prefix;
    std::unique_ptr<TcpProxy> proxy;
    std::unique_ptr<Subscriber> sub;
    SeqTracker tracker;
    std::vector<StopMark> marks;
    uint64_t base = 0;     // cursor before the first run: seqs at or below were never sent here
    uint64_t max_dups = 0, max_dups_bound = 0, total_dups = 0;
    explicit Upstream(const std::string& status_topic) : tracker(status_topic) {}
  };
  void Settle();
  void CheckWindows(Upstream& u, int index);

  RigOptions options_;
  TempDir dir_;
  MosquittoBroker broker_;
  std::vector<std::unique_ptr<Upstream>> ups_;
  std::unique_ptr<Pusher> steady_, burst_;
  Process daemon_;
  size_t log_offset_ = 0;
  bool paused_ = false;
  int stops_ = 0;
  uint64_t prev_max_ = 0, prev_next_ = 0, prev_reserved_ = 0;
};

}  // namespace testing
}  // namespace sluice
