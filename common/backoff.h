// Capped exponential backoff with full jitter, for reconnects and sensor
// retries. Not thread-safe; one per retrying thing.
#pragma once

#include <cstdint>
#include <random>

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

}  // namespace sluice
