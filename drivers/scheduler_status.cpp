// Scheduler's snapshots for `sluice status`: per-sensor state (ok,
// failing, stuck, late ...) and the totals. See scheduler.h.
#include "drivers/scheduler.h"

#include <algorithm>
#include <cmath>

namespace sluice {

SensorStatus Scheduler::SnapshotLocked(const Entry& e, int64_t now_mono_us) const {
  SensorStatus s = e.status;
  s.overdue_us = std::max<int64_t>(0, now_mono_us - e.due_mono_us);
  s.stuck_for_us = e.hung_since_mono_us != 0 ? now_mono_us - e.hung_since_mono_us : 0;
  int64_t late_after = kLateIntervals * e.spec.interval_us;
  if (e.driver->blocking()) late_after = std::max(late_after, TimeoutOf(e));
  if (s.stuck_for_us > 0) {
    s.state = "stuck";
  } else if (s.overdue_us > late_after) {
    s.state = "late";
  } else if (s.failing) {
    s.state = "failing";
  } else {
    s.state = s.reads == 0 ? "waiting" : "ok";
  }
  return s;
}

std::vector<SensorStatus> Scheduler::Statuses() const {
  const int64_t now = clock_.NowMonotonicUs();
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> slock(status_mu_);
  std::vector<SensorStatus> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(SnapshotLocked(*e, now));
  return out;
}

bool Scheduler::GetStatus(const std::string& name, SensorStatus* out) const {
  const int64_t now = clock_.NowMonotonicUs();
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> slock(status_mu_);
  for (const auto& e : entries_) {
    if (e->spec.name == name) {
      *out = SnapshotLocked(*e, now);
      return true;
    }
  }
  return false;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats st;
  std::lock_guard<std::mutex> lock(mu_);
  {
    std::lock_guard<std::mutex> slock(status_mu_);
    st.sensors = entries_.size();
    for (const auto& e : entries_) {
      const SensorStatus& s = e->status;
      st.reads += s.reads;
      st.errors += s.errors;
      st.submitted += s.submitted;
      st.suppressed += s.suppressed;
      st.dropped += s.dropped;
      st.missed += s.missed;
      if (s.failing) ++st.failing;
    }
    st.timeouts = timeouts_;
    st.late_discarded = late_discarded_;
    st.in_flight = in_flight_;
  }
  st.pool = pool_.stats();
  JitterStats& j = st.jitter;
  j.samples = jitter_count_;
  j.max_us = jitter_max_us_;
  j.mean_us = jitter_count_ > 0 ? jitter_sum_us_ / static_cast<int64_t>(jitter_count_) : 0;
  auto quantile = [&](double q) -> int64_t {
    if (jitter_count_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(jitter_count_)));
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (int b = 0; b < kJitterBuckets; ++b) {
      seen += jitter_hist_[b];
      if (seen >= rank) {
        int64_t upper = b == 0 ? 0 : (int64_t{1} << b) - 1;
        return std::min(upper, jitter_max_us_);
      }
    }
    return jitter_max_us_;
  };
  j.p50_us = quantile(0.50);
  j.p99_us = quantile(0.99);
  return st;
}

}  // namespace sluice
