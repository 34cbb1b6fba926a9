#include "drivers/scheduler.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <random>

#include "common/units.h"

namespace sluice {
namespace {

constexpr int64_t kMaxIdleWaitUs = 1000000;

int BucketOf(int64_t late_us, int buckets) {
  if (late_us <= 0) return 0;
  int b = 64 - __builtin_clzll(static_cast<unsigned long long>(late_us));
  return b < buckets ? b : buckets - 1;
}

}  // namespace

Scheduler::Scheduler(Clock& clock, ReadingSink& sink) : Scheduler(clock, sink, Options()) {}

Scheduler::Scheduler(Clock& clock, ReadingSink& sink, Options options)
    : clock_(clock), sink_(sink), options_(options) {}

Scheduler::~Scheduler() { Stop(); }

Status Scheduler::Add(const SensorSpec& spec, Driver& driver) {
  if (!driver.polled()) {
    return InvalidArgument("sensor \"" + spec.name + "\": driver \"" + spec.driver +
                           "\" is not polled");
  }
  if (spec.interval_us <= 0) {
    return InvalidArgument("sensor \"" + spec.name + "\": interval must be > 0");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : entries_) {
      if (e->spec.name == spec.name) {
        return InvalidArgument("sensor \"" + spec.name + "\" added twice");
      }
    }
    uint64_t seed = options_.seed != 0 ? options_.seed + entries_.size()
                                       : static_cast<uint64_t>(std::random_device{}());
    auto e = std::make_unique<Entry>(
        spec, &driver, clock_.NowMonotonicUs(),
        Backoff(options_.backoff_initial_us, options_.backoff_max_us, seed),
        options_.log_interval_us, clock_);
    e->status.name = spec.name;
    e->status.driver = spec.driver;
    e->status.interval_us = spec.interval_us;
    heap_.push(Due{e->deadline_us, entries_.size()});
    entries_.push_back(std::move(e));
  }
  {
    std::lock_guard<std::mutex> lock(thread_mu_);
    added_ = true;
  }
  cv_.notify_all();
  return Status::Ok();
}

int64_t Scheduler::RunDue(int64_t now_mono_us) {
  std::lock_guard<std::mutex> run(run_mu_);
  bool sink_full = false;
  for (;;) {
    Entry* e;
    size_t index;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (heap_.empty()) return std::numeric_limits<int64_t>::max();
      if (heap_.top().deadline_us > now_mono_us) return heap_.top().deadline_us;
      index = heap_.top().index;
      heap_.pop();
      e = entries_[index].get();
    }
    const int64_t interval = e->spec.interval_us;
    int64_t slot = e->deadline_us;
    uint64_t missed = 0;
    if (now_mono_us - slot >= interval) {
      missed = static_cast<uint64_t>((now_mono_us - slot) / interval);
      slot += static_cast<int64_t>(missed) * interval;
    }
    if (missed > 0) {
      std::lock_guard<std::mutex> lock(status_mu_);
      e->status.missed += missed;
    }
    int64_t next = SampleOne(*e, slot, now_mono_us, &sink_full);
    e->deadline_us = next;
    std::lock_guard<std::mutex> lock(mu_);
    RecordLateness(now_mono_us - slot);
    heap_.push(Due{next, index});
  }
}

int64_t Scheduler::SampleOne(Entry& e, int64_t slot_us, int64_t now_mono_us,
                             bool* sink_full) {
  const SensorSpec& spec = e.spec;
  const int64_t wall = clock_.NowWallUs();
  StatusOr<double> raw = e.driver->Sample(wall);
  std::string error;
  if (!raw.ok()) {
    error = raw.status().message();
  } else if (!std::isfinite(*raw)) {
    error = "driver returned a non-finite value";
  }
  int64_t next = slot_us + spec.interval_us;

  if (!error.empty()) {
    int64_t retry_at = now_mono_us + e.backoff.NextDelayUs();
    if (retry_at > next) {
      // Stay on the grid: the first slot at or after retry_at.
      int64_t slots = (retry_at - slot_us + spec.interval_us - 1) / spec.interval_us;
      next = slot_us + slots * spec.interval_us;
    }
    int failures;
    {
      std::lock_guard<std::mutex> lock(status_mu_);
      SensorStatus& s = e.status;
      ++s.reads;
      ++s.errors;
      failures = ++s.consecutive_failures;
      s.failing = true;
      s.last_error = error;
      s.last_error_ts_us = wall;
    }
    e.log.Log("sensor \"" + spec.name + "\" failing (" + std::to_string(failures) +
              " in a row): " + error + "; retrying in " +
              FormatDuration(next - now_mono_us));
    return next;
  }

  const double value = *raw * spec.scale + spec.offset;
  const bool recovered = e.backoff.failures() > 0;
  e.backoff.Reset();
  bool want = !e.has_submitted || spec.deadband <= 0 ||
              std::fabs(value - e.last_submitted) > spec.deadband ||
              (spec.heartbeat_us > 0 && slot_us - e.last_submit_mono_us >= spec.heartbeat_us);
  enum { kSubmitted, kSuppressed, kDropped } outcome = kSuppressed;
  Status st;
  if (want) {
    Reading r;
    r.sensor = spec.name;
    r.ts_us = wall;
    r.value = value;
    r.unit = spec.unit;
    r.quality = Quality::kGood;
    st = sink_.Submit(std::move(r), *sink_full ? 0 : options_.submit_timeout_us);
    if (st.ok()) {
      outcome = kSubmitted;
      e.has_submitted = true;
      e.last_submitted = value;
      e.last_submit_mono_us = slot_us;
    } else {
      outcome = kDropped;
      *sink_full = true;
    }
  }
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    SensorStatus& s = e.status;
    ++s.reads;
    s.failing = false;
    s.consecutive_failures = 0;
    s.has_value = true;
    s.last_value = value;
    s.last_ts_us = wall;
    if (outcome == kSubmitted) ++s.submitted;
    if (outcome == kSuppressed) ++s.suppressed;
    if (outcome == kDropped) ++s.dropped;
  }
  if (recovered) LogInfo("drivers", "sensor \"" + spec.name + "\" recovered");
  if (outcome == kDropped) {
    e.log.Log("sensor \"" + spec.name + "\": reading dropped: " + st.ToString());
  }
  return next;
}

void Scheduler::RecordLateness(int64_t late_us) {
  if (late_us < 0) late_us = 0;
  ++jitter_hist_[BucketOf(late_us, kJitterBuckets)];
  ++jitter_count_;
  jitter_sum_us_ += late_us;
  if (late_us > jitter_max_us_) jitter_max_us_ = late_us;
}

void Scheduler::Start() {
  std::lock_guard<std::mutex> lock(thread_mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Scheduler::Stop() {
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(thread_mu_);
    stop_ = true;
    t = std::move(thread_);
  }
  cv_.notify_all();
  if (t.joinable()) t.join();
}

void Scheduler::Loop() {
  for (;;) {
    int64_t next = RunDue(clock_.NowMonotonicUs());
    std::unique_lock<std::mutex> lock(thread_mu_);
    if (stop_) return;
    if (added_) {
      added_ = false;
      continue;
    }
    int64_t wait = kMaxIdleWaitUs;
    if (next != std::numeric_limits<int64_t>::max()) {
      wait = std::min(kMaxIdleWaitUs, next - clock_.NowMonotonicUs());
    }
    if (wait <= 0) continue;
    cv_.wait_for(lock, std::chrono::microseconds(wait), [this] { return stop_ || added_; });
    if (stop_) return;
    added_ = false;
  }
}

std::vector<SensorStatus> Scheduler::Statuses() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> slock(status_mu_);
  std::vector<SensorStatus> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.push_back(e->status);
  return out;
}

bool Scheduler::GetStatus(const std::string& name, SensorStatus* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> slock(status_mu_);
  for (const auto& e : entries_) {
    if (e->spec.name == name) {
      *out = e->status;
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
  }
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
