// Helpers for the integration tests: sluiced configs and processes, reading
// buffer.db, parsing upstream JSON payloads, tracking which seqs arrived,
// and clients for the push line protocol. Loopback only; every wait is
// bounded. Not thread-safe unless noted.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/subscriber.h"
#include "tests/support/support.h"

struct sqlite3;

namespace sluice {
namespace testing {

constexpr const char* kAgent = "it-gw";
constexpr const char* kUpstream = "cloud";

// A sluiced config file (CONTRACT.md "Configuration") built from parts.
struct ConfigSpec {
  std::string data_dir;
  std::string control_socket;
  std::string durability = "normal";
  std::string commit_interval = "20ms";
  std::string extra_buffer;            // raw lines appended to [buffer]
  std::vector<std::string> sensors;    // raw [[sensor]] blocks
  std::string upstream_url;            // empty: no [[upstream]]
  int max_inflight = 64;
  std::string shutdown_grace = "3s";
  std::string ToToml() const;
};

std::string SimulatedSensor(const std::string& name, const std::string& interval,
                            const std::string& unit = "C");
std::string PushSensor(const std::string& name, const std::string& listen);

// Result of a sluiced run that is expected to end on its own.
struct RunResult {
  int status = -1;  // raw wait status; -1 if it had to be killed
  std::string out;
  std::string err;
};
// Runs sluiced with `args` (after the binary), bounded by timeout_us.
RunResult RunSluiced(const std::vector<std::string>& args, const std::string& scratch_dir,
                     int64_t timeout_us = 20000000);

std::string SluicedPath();
// Runs `binary` with `args` (and `env`, "KEY=VALUE" each), bounded by
// timeout_us; stdout and stderr are collected through files in scratch_dir.
RunResult RunProgram(const std::string& binary, const std::vector<std::string>& args,
                     const std::string& scratch_dir, int64_t timeout_us = 20000000,
                     const std::vector<std::string>& env = {});
// The command line that runs sluiced: SLUICE_EMULATOR's words (a cross
// build's "qemu-aarch64 -L /", set by CTest), then SluicedPath().
std::vector<std::string> SluicedArgv();

// One long-running sluiced; stderr appended to `stderr_path` across runs.
class Sluiced {
 public:
  Sluiced(std::string config_path, std::string stderr_path)
      : config_path_(std::move(config_path)), stderr_path_(std::move(stderr_path)) {}
  // Extra environment ("KEY=VALUE") for the next Start()s.
  void set_env(std::vector<std::string> env) { env_ = std::move(env); }
  // Starts the process and waits (bounded) until it logs "serving".
  bool Start(std::string* error = nullptr);
  // SIGKILL and reap.
  void Kill();
  // SIGTERM and reap (SIGKILL after grace). Returns the raw wait status.
  int Terminate(int64_t grace_us = 15000000);
  // True while running (reaps it if it exited).
  bool Alive();
  std::string Log() const { return ReadFile(stderr_path_); }
  pid_t pid() const { return process_.pid(); }
  // The raw wait status of the last run that ended (after Alive() saw it
  // exit, Kill() or Terminate()).
  int wait_status() const { return process_.wait_status(); }

 private:
  std::string config_path_;
  std::string stderr_path_;
  size_t log_offset_ = 0;
  std::vector<std::string> env_;
  Process process_;
};

// What data_dir/buffer.db holds (read with a read-only connection).
struct DbRow {
  std::string sensor;
  int64_t ts_us = 0;
};
struct DbSnapshot {
  bool ok = false;
  std::string error;
  uint64_t rows = 0;
  uint64_t min_seq = 0;
  uint64_t max_seq = 0;
  uint64_t meta_next_seq = 0;   // persisted high-water mark (+1)
  uint64_t cursor = 0;          // cursors.acked_seq of kUpstream
  std::map<uint64_t, DbRow> events;  // only with rows = true
};
DbSnapshot ReadBufferDb(const std::string& data_dir, bool with_rows = false);
// The first column of the first row of `sql` as an integer (0 if no row);
// *ok = false if it fails (test oracle, any open connection).
uint64_t QueryU64(sqlite3* db, const char* sql, bool* ok);
// data_dir/buffer.seq, 0 if missing.
uint64_t ReadSeqReservation(const std::string& data_dir);

// A flat JSON object's scalar fields, as the uplink writes them.
struct EventJson {
  std::string agent, sensor, unit, quality;
  uint64_t seq = 0;
  int64_t ts_us = 0;
  double value = 0;
  std::set<std::string> keys;
};
bool ParseEventJson(const std::string& payload, EventJson* out);

// Follows a Subscriber's messages on event topics (everything but the
// status topic): seq counts, duplicates, order of first arrival, payload
// reuse. Feed() is incremental, so it can run inside Subscriber::WaitFor.
class SeqTracker {
 public:
  explicit SeqTracker(std::string status_topic) : status_topic_(std::move(status_topic)) {}
  void Feed(const std::vector<ReceivedMessage>& messages);
  // Waits (bounded) until every seq in [lo, hi] was seen.
  bool WaitCovers(const Subscriber& sub, uint64_t lo, uint64_t hi, int64_t timeout_us);

  std::vector<uint64_t> Missing(uint64_t lo, uint64_t hi) const;
  bool Seen(uint64_t seq) const { return count_.count(seq) != 0; }
  uint64_t MaxSeen() const { return count_.empty() ? 0 : count_.rbegin()->first; }
  uint64_t MinSeen() const { return count_.empty() ? 0 : count_.begin()->first; }
  size_t Distinct() const { return count_.size(); }
  uint64_t duplicates() const { return duplicates_; }
  // Duplicates that arrived at message index >= from (of all messages).
  uint64_t DuplicatesFrom(size_t from, size_t to = SIZE_MAX) const;
  uint64_t out_of_order() const { return out_of_order_; }  // first arrivals
  uint64_t bad_payloads() const { return bad_; }
  uint64_t reused() const { return reused_; }  // same seq, other payload
  const std::map<uint64_t, EventJson>& events() const { return events_; }
  size_t fed() const { return next_; }
  // "a-b xN" ranges of duplicated seqs in arrival order (diagnostics).
  std::string DuplicateRanges(size_t max_ranges = 12) const;
  // The seqs of the duplicates that arrived at message index in [from, to).
  std::vector<uint64_t> DuplicateSeqs(size_t from, size_t to = SIZE_MAX) const;
  // Distinct seqs seen that are > seq.
  uint64_t SeenAbove(uint64_t seq) const;
  // Seqs a first arrival jumped over (first arrival s after the highest
  // first arrival m, s > m + 1: m+1..s-1), as [first, last] ranges.
  const std::vector<std::pair<uint64_t, uint64_t>>& first_send_gaps() const {
    return first_gaps_;
  }

 private:
  std::string status_topic_;
  size_t next_ = 0;
  std::map<uint64_t, int> count_;
  std::map<uint64_t, std::string> payload_;
  std::map<uint64_t, EventJson> events_;
  std::vector<size_t> dup_index_;
  std::vector<uint64_t> dup_seq_;
  std::vector<std::pair<uint64_t, uint64_t>> first_gaps_;
  uint64_t last_first_ = 0;
  uint64_t duplicates_ = 0, out_of_order_ = 0, bad_ = 0, reused_ = 0;
};

// The seed of a randomised test: $SLUICE_TEST_SEED if set (replays a run),
// else a random one. Printed (with how to replay it) as a Catch2 warning
// naming `what`.
uint64_t TestSeed(const std::string& what);

// Line protocol clients.
// Connects a stream socket to unix://PATH; -1 on failure.
int ConnectUnix(const std::string& path);
// Connects to tcp://127.0.0.1:port; -1 on failure.
int ConnectTcp(int port);
// Writes all of `data` (MSG_NOSIGNAL); false on error.
bool SendAll(int fd, const std::string& data);
// One datagram to udp://127.0.0.1:port.
bool SendUdp(int port, const std::string& datagram);

// A background writer streaming `SENSOR i` lines to a unix stream socket at
// about `rate` lines/s, reconnecting while the daemon is down. Lines lost
// in a crash are fine: only committed seqs count. Thread-safe controls.
class Pusher {
 public:
  Pusher(std::string path, std::string sensor, int rate);
  ~Pusher();
  void Start();
  void Stop();
  void Pause(bool paused) { paused_ = paused; }
  uint64_t sent() const { return sent_.load(); }

 private:
  void Run();
  std::string path_, sensor_;
  int rate_;
  std::atomic<bool> stop_{false}, paused_{false};
  std::atomic<uint64_t> sent_{0};
  std::thread thread_;
};

void SleepMs(int64_t ms);
// Counts non-overlapping occurrences of `needle` in `hay`.
size_t CountOf(const std::string& hay, const std::string& needle);

}  // namespace testing
}  // namespace sluice
