// sluice-bench: subcommands and the workload they share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "buffer/ring.h"
#include "common/status.h"

namespace sluice {
namespace bench {

struct Args {
  uint64_t events = 0;  // 0: the subcommand's default
  int runs = 0;         // 0: the subcommand's default
  bool quick = false;   // tiny N for the CTest smoke test
  bool keep = false;    // keep temp dirs (for inspection)
  uint64_t bridge_events = 0;  // 0: same as events
  int bridge_autosave = 1;     // bridge broker's autosave_interval, seconds
  size_t max_inflight = 256;   // json upstream window (and the Paho baseline's)
  size_t batch = 256;          // flatbuffers batch_max_events
  int sub_qos = 1;             // the counting subscriber's subscription QoS
  uint64_t seconds = 0;        // wear: seconds per measurement (0: default)
};

// The workload: readings of a few sensors (round robin), pre-encoded as
// the ring's Records (FlatBuffers Event bodies). Deterministic.
extern const char* const kSensors[];
constexpr size_t kSensorCount = 4;
// Records number first .. first+n-1 of the workload.
std::vector<Record> MakeRecords(uint64_t first, uint64_t n);

// Fills data_dir's ring with n events (no upstream acknowledged any);
// options come from RingOptionsFor. Returns the elapsed seconds.
StatusOr<double> BuildBacklog(const std::string& data_dir, uint64_t n,
                              const std::vector<std::string>& upstreams);
// Ring limits large enough that n events are never evicted.
RingOptions RingOptionsFor(const std::string& data_dir, uint64_t n, Durability d);

// Subcommands; each returns the process exit status (0: every figure was
// measured; 1: a run failed or lost events).
int RunIngest(const Args& args);
int RunDrain(const Args& args);
// Readings/s through the rules engine (1, 10, 100 rules); no broker.
int RunRules(const Args& args);
// CPU per wall second and sampling lateness of simulated sensors through
// the Scheduler (1,000 at 1 Hz, 10 at 1 kHz), into a ring and a counting sink.
int RunSensors(const Args& args);
// Bytes written to storage per reading (durability off/normal/full, 20
// staggered sensors; a 10,000 readings/s burst), bytes at rest per reading
// and peak memory, beside raw SQLite (wear.cpp).
int RunWear(const Args& args);

}  // namespace bench
}  // namespace sluice
