#include "common/backoff.h"

#include <algorithm>

namespace sluice {

int64_t Backoff::NextDelayUs() {
  int64_t base = initial_us_;
  for (int i = 0; i < failures_ && base < max_us_; ++i) base *= 2;
  base = std::min(base, max_us_);
  if (failures_ < 62) ++failures_;
  std::uniform_int_distribution<int64_t> dist(base / 2, base);
  return dist(rng_);
}

int64_t ReconnectBackoff::NextDelayUs() {
  if (connected_at_us_ >= 0 && clock_.NowMonotonicUs() - connected_at_us_ >= stable_us_) {
    backoff_.Reset();
  }
  connected_at_us_ = -1;
  return backoff_.NextDelayUs();
}

}  // namespace sluice
