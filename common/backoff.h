// Capped exponential backoff with full jitter, for reconnects and sensor
// retries. Not thread-safe; one per retrying thing.
#pragma once

#include <cstdint>
#include <random>

#include "common/clock.h"

namespace sluice {

class Backoff {
 public:
  Backoff(int64_t initial_us, int64_t max_us, uint64_t seed = std::random_device{}())
      : initial_us_(initial_us), max_us_(max_us), rng_(seed) {}

  // The delay before the next attempt: uniform in [base/2, base] where base
  // doubles per failure from initial up to max.
  int64_t NextDelayUs();
  // After a success: the next failure starts again from `initial`.
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  int64_t initial_us_;
  int64_t max_us_;
  int failures_ = 0;
  std::mt19937_64 rng_;
};

// How long a connection must stay up before it counts as a success that
// starts the reconnect backoff over. A peer that accepts every connection
// (CONNACK and all) and drops it moments later must not be redialled at the
// initial delay forever: such a connection counts as a failed attempt.
// 30 s is longer than any handshake and shorter than MQTT's default 60 s
// keepalive, so one healthy keepalive round trip already resets it.
constexpr int64_t kStableConnectionUs = 30 * 1000000ll;

// The reconnect policy of a link (uplinks, the mqtt driver): a Backoff that
// grows with every failed attempt and with every connection that ended
// within `stable_us` of coming up, and starts over only after a connection
// stayed up at least `stable_us`. Time comes from `clock` (which must
// outlive this). Not thread-safe; one per link.
class ReconnectBackoff {
 public:
  ReconnectBackoff(int64_t initial_us, int64_t max_us, Clock& clock,
                   int64_t stable_us = kStableConnectionUs,
                   uint64_t seed = std::random_device{}())
      : backoff_(initial_us, max_us, seed), clock_(clock), stable_us_(stable_us) {}

  // A connection came up now (after CONNACK).
  void Connected() { connected_at_us_ = clock_.NowMonotonicUs(); }
  // The delay before the next attempt, after a failed attempt or after the
  // connection that Connected() recorded ended. A connection that lasted
  // stable_us or longer resets the schedule first.
  int64_t NextDelayUs();
  // Attempts (failed or short-lived) since the schedule last started over.
  int failures() const { return backoff_.failures(); }

 private:
  Backoff backoff_;
  Clock& clock_;
  int64_t stable_us_;
  int64_t connected_at_us_ = -1;  // -1: no connection since the last delay
};

}  // namespace sluice
