// The Scheduler samples polled drivers at absolute deadlines on the
// monotonic clock and submits their readings to a ReadingSink.
//
// - No drift: each sensor's next deadline is its previous deadline plus its
//   interval, never now + interval. A sensor that fell behind by a whole
//   interval or more skips the missed slots (counted) and samples once.
// - Each reading is value * scale + offset, stamped with the wall clock at
//   the sample. Deadband: submitted only if |v - last submitted| > deadband
//   (deadband 0: always); heartbeat: submitted anyway once heartbeat_us has
//   passed since the last submitted one.
// - Submit waits at most Options::submit_timeout_us; a refused reading is
//   counted as dropped, and for the rest of that pass the other sensors do
//   not wait again (a full pipeline never stalls the sensors for long).
// - A failing sensor (Sample() error, NaN or inf) is marked failing, logged
//   rate-limited (its "recovered" lines too: a flapping sensor logs at most
//   one of each per log interval) and retried after a capped, jittered
//   backoff (on its grid: retries land on deadlines of the original
//   schedule) until it recovers.
// - Lateness of every sample vs its deadline is recorded (jitter stats).
// - Blocking drivers (Driver::blocking()) are sampled on a WorkerPool,
//   never on the scheduler thread, which never waits for them: it hands the
//   read to a worker and applies the result (scale/offset, deadband,
//   heartbeat, status, submit: the same code as for other drivers) on the
//   scheduler thread once the worker reports it. A read that runs longer
//   than spec.timeout_us (0: min(interval, 10 s)), counted from when a worker
//   starts it (or, for a read that joined a shared transaction through
//   Driver::SampleAsync, from when that transaction started), fails the sensor ("read timed out after X", an error like any
//   other: backoff, status); its late result is discarded and the sensor is
//   not sampled again until that read has returned. Hung reads hold only
//   their worker: the pool grows past its base size so other sensors keep
//   being sampled (see worker_pool.h); reads waiting for a shared
//   transaction hold no worker at all. Exceptions thrown by any Sample() are
//   caught and count as failures.
// - Stop() joins the scheduler thread at once and every worker; a worker
//   inside a hung read is joined when that read returns (blocking drivers
//   bound their own I/O by their timeout; the pool logs what it waits for).
//
// Tests drive RunDue() with a FakeClock; the daemon calls Start()/Stop().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "drivers/deadband.h"
#include "drivers/driver.h"
#include "drivers/worker_pool.h"

namespace sluice {

// Sampling lateness (now - deadline when a sample is taken).
struct JitterStats {
  uint64_t samples = 0;
  int64_t max_us = 0;
  int64_t mean_us = 0;
  // Upper bounds from a power-of-two histogram (within a factor of 2).
  int64_t p50_us = 0;
  int64_t p99_us = 0;
};

struct SchedulerStats {
  size_t sensors = 0;
  uint64_t reads = 0;
  uint64_t errors = 0;
  uint64_t submitted = 0;
  uint64_t suppressed = 0;
  uint64_t dropped = 0;
  uint64_t missed = 0;
  size_t failing = 0;
  uint64_t timeouts = 0;        // blocking reads that overran their timeout
  uint64_t late_discarded = 0;  // results of timed-out reads that came back later
  size_t in_flight = 0;         // blocking reads handed to the pool, not yet applied
  WorkerPoolStats pool;         // the blocking drivers' worker pool
  JitterStats jitter;
};

class Scheduler {
 public:
  struct Options {
    int64_t submit_timeout_us = 20000;
    int64_t backoff_initial_us = 1000000;
    int64_t backoff_max_us = 60000000;
    int64_t log_interval_us = 10000000;  // rate limit for failure logs
    uint64_t seed = 0;                    // 0: random backoff jitter
    size_t pool_base = 2;                 // worker pool for blocking drivers
    size_t pool_max = 16;
  };

  // A sensor overdue by more than this many intervals (and its read
  // timeout) is "late".
  static constexpr int64_t kLateIntervals = 3;
  // Timeout of one blocking read when spec.timeout_us is 0.
  static constexpr int64_t kMaxDefaultTimeoutUs = 10000000;

  // `clock` and `sink` must outlive the Scheduler.
  Scheduler(Clock& clock, ReadingSink& sink);
  Scheduler(Clock& clock, ReadingSink& sink, Options options);
  ~Scheduler();  // Stop()s.
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Adds a polled sensor, first sampled at the current monotonic time, then
  // every spec.interval_us. `driver` is not owned and must outlive the
  // Scheduler (or its Stop()). Errors: not polled, interval <= 0, duplicate
  // name. Thread-safe; may be called before or after Start().
  Status Add(const SensorSpec& spec, Driver& driver);

  // Applies the results blocking reads have reported, samples every sensor
  // whose deadline is <= now_mono_us (blocking ones: hands them to the
  // pool), times out overrunning reads, and returns the earliest next
  // deadline (INT64_MAX when there is none). One caller at a time (the
  // scheduler thread, or a test).
  int64_t RunDue(int64_t now_mono_us);

  // Runs RunDue() on a thread of its own until Stop(). Idempotent.
  void Start();
  // Wakes and joins the thread promptly, then the worker pool (see above).
  // Reads still queued are dropped. Idempotent; thread-safe.
  void Stop() { (void)StopWithin(-1); }
  // Stop(), waiting at most `max_wait_us` (-1: no limit) for reads blocked
  // inside a driver. False when some still are: they are abandoned (see
  // WorkerPool::StopWithin) and the process must end without destroying
  // the Scheduler or its drivers.
  bool StopWithin(int64_t max_wait_us);

  // Snapshots for the CLI. Thread-safe.
  std::vector<SensorStatus> Statuses() const;
  bool GetStatus(const std::string& name, SensorStatus* out) const;
  SchedulerStats stats() const;

 private:
  struct Entry {
    SensorSpec spec;
    Driver* driver;
    int64_t deadline_us;       // the grid slot currently scheduled
    DeadbandFilter deadband;
    Backoff backoff;
    RateLimitedLog log;        // failures and drops of this sensor
    RateLimitedLog recover_log;  // "recovered" lines (a flapping sensor)
    SensorStatus status;       // guarded by status_mu_
    int64_t due_mono_us = 0;   // guarded by status_mu_: the slot awaited
    int64_t hung_since_mono_us = 0;  // guarded by status_mu_: 0, or a timed-out read's start
    uint64_t ticket = 0;       // matches its one live heap item
    // Blocking reads; scheduler thread only unless noted.
    bool in_flight = false;    // handed to the pool, result not applied yet
    bool timed_out = false;    // the in-flight read overran: discard its result
    uint64_t job_id = 0;
    int64_t read_slot_us = 0;  // the slot the in-flight read samples
    int64_t dispatched_mono_us = 0;  // when it was handed to the pool
    std::atomic<int64_t> started_mono_us{0};  // set by the worker
    int64_t started_wall_us = 0;              // guarded by done_mu_
    StatusOr<double> result{Internal("no result")};  // guarded by done_mu_
    Entry(const SensorSpec& s, Driver* d, int64_t deadline, Backoff b,
          int64_t log_interval_us, Clock& clock)
        : spec(s), driver(d), deadline_us(deadline), backoff(b),
          log(LogLevel::kWarn, "drivers", log_interval_us, clock),
          recover_log(LogLevel::kInfo, "drivers", log_interval_us, clock) {}
  };
  struct Due {
    int64_t deadline_us;
    size_t index;
    uint64_t ticket;
    bool operator>(const Due& o) const {
      return deadline_us != o.deadline_us ? deadline_us > o.deadline_us : index > o.index;
    }
  };
  static constexpr int kJitterBuckets = 40;

  // Applies one sample (or its failure) of `e` taken at `wall_us` for
  // `slot_us`: status, backoff, scale/offset, deadband, submit. Returns the
  // next deadline. Scheduler thread (RunDue) only.
  int64_t Apply(Entry& e, int64_t slot_us, int64_t now_mono_us, int64_t wall_us,
                const StatusOr<double>& raw, bool* sink_full);
  // Hands `e`'s read of `slot_us` to the pool; schedules its timeout check.
  void Dispatch(Entry& e, size_t index, int64_t slot_us, int64_t now_mono_us);
  // An in-flight read's timeout check came due.
  void CheckTimeout(Entry& e, size_t index, int64_t now_mono_us, bool* sink_full);
  // Applies every result the workers have reported.
  void ApplyCompletions(int64_t now_mono_us, bool* sink_full);
  int64_t TimeoutOf(const Entry& e) const;
  // How often a hung read is looked at again (and logged, rate limited).
  int64_t HungCheckEveryUs() const;
  // `e`'s status with state, stuck_for_us, overdue_us as of `now_mono_us`.
  // REQUIRES: status_mu_ held.
  SensorStatus SnapshotLocked(const Entry& e, int64_t now_mono_us) const;
  // Records the slot `e` waits for next (for "late"). Takes status_mu_.
  void SetDue(Entry& e, int64_t due_mono_us);
  // A read of `e` returned at `wall_us`; the next slot is `next_due_mono_us`.
  void Sampled(Entry& e, int64_t wall_us, int64_t next_due_mono_us);
  // REQUIRES: mu_ held.
  void PushLocked(Entry& e, size_t index, int64_t deadline_us);
  void Push(Entry& e, size_t index, int64_t deadline_us);
  void RecordLateness(int64_t late_us);
  void Wake();
  void Loop();

  Clock& clock_;
  ReadingSink& sink_;
  Options options_;

  mutable std::mutex mu_;  // guards entries_ (the vector), heap_, jitter
  std::vector<std::unique_ptr<Entry>> entries_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> heap_;
  uint64_t jitter_hist_[kJitterBuckets] = {};
  uint64_t jitter_count_ = 0;
  int64_t jitter_sum_us_ = 0;
  int64_t jitter_max_us_ = 0;

  mutable std::mutex status_mu_;  // guards Entry::status
  uint64_t timeouts_ = 0;         // guarded by status_mu_
  uint64_t late_discarded_ = 0;   // guarded by status_mu_
  size_t in_flight_ = 0;          // guarded by status_mu_

  std::mutex done_mu_;            // guards done_ and Entry results
  std::vector<size_t> done_;      // entries whose read returned

  std::mutex run_mu_;  // one RunDue() at a time

  std::mutex thread_mu_;
  std::condition_variable cv_;  // with thread_mu_: Stop(), Add(), workers wake Loop()
  bool stop_ = false;
  bool wake_ = false;
  std::thread thread_;

  WorkerPool pool_;  // blocking reads; declared last, stopped by Stop()
};

}  // namespace sluice
