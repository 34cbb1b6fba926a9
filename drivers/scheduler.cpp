#include "drivers/scheduler.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "common/units.h"

namespace sluice {
namespace {

constexpr int64_t kMaxIdleWaitUs = 1000000;

// Sample() behind a wall: an exception is a failure, never a crash.
StatusOr<double> CallSample(Driver& driver, int64_t wall_us) {
  try {
    return driver.Sample(wall_us);
  } catch (const std::exception& ex) {
    return Internal(std::string("driver threw: ") + ex.what());
  } catch (...) {
    return Internal("driver threw an unknown exception");
  }
}

WorkerPool::Options PoolOptions(const Scheduler::Options& o) {
  WorkerPool::Options p;
  p.base = o.pool_base;
  p.max = o.pool_max;
  return p;
}

int BucketOf(int64_t late_us, int buckets) {
  if (late_us <= 0) return 0;
  int b = 64 - __builtin_clzll(static_cast<unsigned long long>(late_us));
  return b < buckets ? b : buckets - 1;
}

}  // namespace

Scheduler::Scheduler(Clock& clock, ReadingSink& sink) : Scheduler(clock, sink, Options()) {}

Scheduler::Scheduler(Clock& clock, ReadingSink& sink, Options options)
    : clock_(clock), sink_(sink), options_(options), pool_(PoolOptions(options)) {}

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
    e->due_mono_us = e->deadline_us;
    e->ticket = 1;
    heap_.push(Due{e->deadline_us, entries_.size(), e->ticket});
    entries_.push_back(std::move(e));
  }
  Wake();
  return Status::Ok();
}

void Scheduler::Wake() {
  {
    std::lock_guard<std::mutex> lock(thread_mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void Scheduler::PushLocked(Entry& e, size_t index, int64_t deadline_us) {
  heap_.push(Due{deadline_us, index, ++e.ticket});
}

void Scheduler::Push(Entry& e, size_t index, int64_t deadline_us) {
  std::lock_guard<std::mutex> lock(mu_);
  PushLocked(e, index, deadline_us);
}

int64_t Scheduler::HungCheckEveryUs() const {
  return std::max<int64_t>(options_.log_interval_us, kMaxIdleWaitUs);
}

int64_t Scheduler::TimeoutOf(const Entry& e) const {
  if (e.spec.timeout_us > 0) return e.spec.timeout_us;
  return std::min(e.spec.interval_us, kMaxDefaultTimeoutUs);
}

int64_t Scheduler::RunDue(int64_t now_mono_us) {
  std::lock_guard<std::mutex> run(run_mu_);
  bool sink_full = false;
  ApplyCompletions(now_mono_us, &sink_full);
  for (;;) {
    Entry* e;
    size_t index;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (heap_.empty()) return std::numeric_limits<int64_t>::max();
      if (heap_.top().deadline_us > now_mono_us) return heap_.top().deadline_us;
      index = heap_.top().index;
      uint64_t ticket = heap_.top().ticket;
      heap_.pop();
      e = entries_[index].get();
      if (ticket != e->ticket) continue;  // superseded
    }
    if (e->in_flight) {
      CheckTimeout(*e, index, now_mono_us, &sink_full);
      continue;
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
    if (e->driver->blocking()) {
      Dispatch(*e, index, slot, now_mono_us);
      continue;
    }
    const int64_t wall = clock_.NowWallUs();
    int64_t next = Apply(*e, slot, now_mono_us, wall, CallSample(*e->driver, wall), &sink_full);
    e->deadline_us = next;
    Sampled(*e, wall, next);
    std::lock_guard<std::mutex> lock(mu_);
    RecordLateness(now_mono_us - slot);
    PushLocked(*e, index, next);
  }
}

void Scheduler::SetDue(Entry& e, int64_t due_mono_us) {
  std::lock_guard<std::mutex> lock(status_mu_);
  e.due_mono_us = due_mono_us;
}

void Scheduler::Sampled(Entry& e, int64_t wall_us, int64_t next_due_mono_us) {
  std::lock_guard<std::mutex> lock(status_mu_);
  e.status.last_sample_ts_us = wall_us;
  e.due_mono_us = next_due_mono_us;
  e.hung_since_mono_us = 0;
}

void Scheduler::Dispatch(Entry& e, size_t index, int64_t slot_us, int64_t now_mono_us) {
  SetDue(e, slot_us);
  e.in_flight = true;
  e.timed_out = false;
  e.read_slot_us = slot_us;
  e.dispatched_mono_us = now_mono_us;
  e.started_mono_us.store(0);
  Entry* ep = &e;
  e.job_id = pool_.Submit(e.spec.name, [this, ep, index] {
    const int64_t wall = clock_.NowWallUs();
    ep->started_mono_us.store(clock_.NowMonotonicUs());
    {
      std::lock_guard<std::mutex> lock(done_mu_);
      ep->started_wall_us = wall;
    }
    // `done` may run on another worker (a shared transaction); only its
    // first call counts (a driver that throws after reporting).
    auto reported = std::make_shared<std::atomic<bool>>(false);
    std::function<void(StatusOr<double>)> done = [this, ep, index,
                                                  reported](StatusOr<double> raw) {
      if (reported->exchange(true)) return;
      {
        std::lock_guard<std::mutex> lock(done_mu_);
        ep->result = std::move(raw);
        done_.push_back(index);
      }
      Wake();
    };
    AsyncRead read;
    read.wall_us = wall;
    read.started = [this, ep](int64_t mono_us, int64_t wall_us) {
      ep->started_mono_us.store(mono_us);
      std::lock_guard<std::mutex> lock(done_mu_);
      ep->started_wall_us = wall_us;
    };
    read.done = done;
    try {
      ep->driver->SampleAsync(std::move(read));
    } catch (const std::exception& ex) {
      done(Internal(std::string("driver threw: ") + ex.what()));
    } catch (...) {
      done(Internal("driver threw an unknown exception"));
    }
  });
  if (e.job_id == 0) {  // the pool is stopping: try again at the next slot
    e.in_flight = false;
    e.deadline_us = slot_us + e.spec.interval_us;
    Push(e, index, e.deadline_us);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    ++in_flight_;
  }
  Push(e, index, now_mono_us + TimeoutOf(e));
}

void Scheduler::CheckTimeout(Entry& e, size_t index, int64_t now_mono_us, bool* sink_full) {
  const int64_t timeout = TimeoutOf(e);
  if (e.timed_out) {
    // Waiting for the hung read (its return reschedules the sensor); say
    // so now and then, rate limited like the failures.
    const int64_t started = e.started_mono_us.load();
    e.log.Log("sensor \"" + e.spec.name + "\": " +
              (started != 0 ? "a read is still hung after " + FormatDuration(now_mono_us - started)
                            : std::string("a read is still waiting for a worker")) +
              " (timeout " + FormatDuration(timeout) +
              "); the sensor is not sampled until it returns");
    Push(e, index, now_mono_us + HungCheckEveryUs());
    return;
  }
  const int64_t started = e.started_mono_us.load();
  if (started == 0 && now_mono_us < e.dispatched_mono_us + timeout) {
    Push(e, index, e.dispatched_mono_us + timeout);  // still queued: no worker free yet
    return;
  }
  if (started == 0 && !pool_.Saturated()) {
    // Queued past its timeout, but a worker is free or being added (a hung
    // read was just marked): look again shortly.
    Push(e, index, now_mono_us + std::min<int64_t>(timeout, 100000));
    return;
  }
  if (started != 0 && now_mono_us < started + timeout) {
    Push(e, index, started + timeout);  // started later than dispatched
    return;
  }
  // Overran, or never started: every worker is held by reads hung elsewhere
  // (the pool is at its cap). Either way the sensor fails now; a late
  // result (or the queued read, should it still run) is discarded.
  e.timed_out = true;
  if (started != 0) pool_.MarkHung(e.job_id);
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    ++e.status.timeouts;
    ++timeouts_;
  }
  if (started != 0) {
    std::lock_guard<std::mutex> lock(mu_);
    RecordLateness(started - e.read_slot_us);
  }
  StatusOr<double> failure =
      started != 0 ? Unavailable("read timed out after " + FormatDuration(timeout))
                   : Unavailable("no free worker for " + FormatDuration(timeout) + " (" +
                                 std::to_string(pool_.stats().hung) + " reads hung)");
  // The next slot is kept in deadline_us and scheduled when the read
  // returns; until then this entry's heap item is the "still hung" check.
  e.deadline_us = Apply(e, e.read_slot_us, now_mono_us, clock_.NowWallUs(), failure, sink_full);
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    e.due_mono_us = e.deadline_us;
    e.hung_since_mono_us = started;
  }
  Push(e, index, now_mono_us + HungCheckEveryUs());
}

void Scheduler::ApplyCompletions(int64_t now_mono_us, bool* sink_full) {
  std::vector<size_t> done;
  {
    std::lock_guard<std::mutex> lock(done_mu_);
    done.swap(done_);
  }
  for (size_t index : done) {
    Entry* e;
    {
      std::lock_guard<std::mutex> lock(mu_);
      e = entries_[index].get();
    }
    StatusOr<double> raw{Internal("no result")};
    int64_t wall;
    {
      std::lock_guard<std::mutex> lock(done_mu_);
      raw = e->result;
      wall = e->started_wall_us;
    }
    e->in_flight = false;
    {
      std::lock_guard<std::mutex> lock(status_mu_);
      --in_flight_;
      if (e->timed_out) ++late_discarded_;
    }
    if (e->timed_out) {
      LogInfo("drivers", "sensor \"" + e->spec.name + "\": the timed-out read returned after " +
                             FormatDuration(now_mono_us - e->started_mono_us.load()) +
                             "; result discarded");
      {
        std::lock_guard<std::mutex> lock(status_mu_);
        e->hung_since_mono_us = 0;
        e->due_mono_us = e->deadline_us;
      }
      Push(*e, index, e->deadline_us);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      RecordLateness(e->started_mono_us.load() - e->read_slot_us);
    }
    e->deadline_us = Apply(*e, e->read_slot_us, now_mono_us, wall, raw, sink_full);
    Sampled(*e, wall, e->deadline_us);
    Push(*e, index, e->deadline_us);
  }
}

int64_t Scheduler::Apply(Entry& e, int64_t slot_us, int64_t now_mono_us, int64_t wall,
                         const StatusOr<double>& raw, bool* sink_full) {
  const SensorSpec& spec = e.spec;
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
  const bool want = e.deadband.Want(spec, value, slot_us);
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
      e.deadband.Submitted(value, slot_us);
    } else {
      outcome = kDropped;
      *sink_full = true;
      sink_.CountDropped(1);
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
  if (recovered) e.recover_log.Log("sensor \"" + spec.name + "\" recovered");
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

bool Scheduler::StopWithin(int64_t max_wait_us) {
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(thread_mu_);
    stop_ = true;
    t = std::move(thread_);
  }
  cv_.notify_all();
  if (t.joinable()) t.join();
  if (!pool_.StopWithin(max_wait_us)) return false;
  // Reads that never ran (dropped from the queue) or returned after the
  // thread stopped: forget them, so a later RunDue() samples afresh.
  std::lock_guard<std::mutex> run(run_mu_);
  {
    std::lock_guard<std::mutex> lock(done_mu_);
    done_.clear();
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < entries_.size(); ++i) {
    Entry& e = *entries_[i];
    if (!e.in_flight) continue;
    e.in_flight = false;
    if (!e.timed_out) e.deadline_us = e.read_slot_us + e.spec.interval_us;
    PushLocked(e, i, e.deadline_us);
    std::lock_guard<std::mutex> slock(status_mu_);
    --in_flight_;
    e.hung_since_mono_us = 0;
    e.due_mono_us = e.deadline_us;
  }
  return true;
}

void Scheduler::Loop() {
  for (;;) {
    int64_t next = RunDue(clock_.NowMonotonicUs());
    std::unique_lock<std::mutex> lock(thread_mu_);
    if (stop_) return;
    if (wake_) {
      wake_ = false;
      continue;
    }
    int64_t wait = kMaxIdleWaitUs;
    if (next != std::numeric_limits<int64_t>::max()) {
      wait = std::min(kMaxIdleWaitUs, next - clock_.NowMonotonicUs());
    }
    if (wait <= 0) continue;
    cv_.wait_for(lock, std::chrono::microseconds(wait), [this] { return stop_ || wake_; });
    if (stop_) return;
    wake_ = false;
  }
}

}  // namespace sluice
