// A small, growable thread pool for blocking sensor reads (Scheduler).
//
// - Starts `base` threads lazily on the first Submit(); jobs run FIFO.
// - A job the owner declares stuck (MarkHung(), a read past its timeout)
//   still holds its thread -- threads cannot be cancelled -- so the pool adds
//   a thread whenever fewer than `base` threads are free of hung jobs, up
//   to `max` threads in all. Once a hung job returns, surplus idle threads
//   (beyond `base` + the still-hung ones) exit. Hung reads therefore never
//   starve the other sensors until `max` - `base` reads hang at once.
// - Stop() drops queued jobs and joins every thread; a thread inside a
//   job is joined when that job returns (the pool cannot interrupt it:
//   blocking drivers bound their own I/O by their timeout). While it waits
//   past `stop_warn_us` it logs which jobs it waits for.
//
// Thread-safe. Jobs must not throw (the Scheduler wraps them).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice {

struct WorkerPoolStats {
  size_t threads = 0;       // current threads
  size_t busy = 0;          // threads running a job
  size_t hung = 0;          // threads running a job marked hung
  size_t queued = 0;        // jobs waiting for a thread
  size_t peak_threads = 0;  // most threads at once
  uint64_t grown = 0;       // threads added beyond `base` because of hung jobs
  uint64_t jobs = 0;        // jobs run to completion
};

class WorkerPool {
 public:
  struct Options {
    size_t base = 2;  // threads kept free of hung jobs
    size_t max = 16;  // hard cap on threads
    int64_t stop_warn_us = 2000000;
  };

  WorkerPool();
  explicit WorkerPool(Options options);
  ~WorkerPool();  // Stop()s.
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job` (named `label` in logs) and returns its id (never 0).
  // After Stop() the job is dropped and 0 returned.
  uint64_t Submit(std::string label, std::function<void()> job);
  // Declares job `id` stuck if it is still running (no-op otherwise); may
  // add a thread (see above).
  void MarkHung(uint64_t id);
  // Drops queued jobs and joins every thread (see above). Idempotent. The
  // pool accepts jobs again afterwards (fresh threads).
  void Stop() { (void)StopWithin(-1); }
  // Stop(), waiting at most `max_wait_us` (-1: no limit) for threads inside
  // a job. Returns false when some are still inside one after that: they
  // are left running and the pool stays stopped; the owner must then not
  // destroy the pool (whose destructor would wait again) but end the
  // process (sluiced _exit()s).
  bool StopWithin(int64_t max_wait_us);

  WorkerPoolStats stats() const;
  // True when every thread is held by a hung job and no more may be added
  // (queued jobs cannot start until a hung one returns).
  bool Saturated() const;

 private:
  struct Job {
    uint64_t id;
    std::string label;
    std::function<void()> fn;
  };
  struct Worker {
    std::thread thread;
    uint64_t job_id = 0;  // running job, 0 when idle
    std::string label;
    bool hung = false;
    bool exited = false;
  };

  void Run(Worker* self);
  // REQUIRES: mu_ held. Adds threads until `base` are free of hung jobs.
  void GrowLocked();
  void SpawnLocked();
  // REQUIRES: mu_ held. Moves exited workers' threads into `out` for joining.
  void ReapLocked(std::vector<std::thread>* out);

  Options options_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // jobs queued or stop
  std::condition_variable done_cv_;  // a thread exited (for Stop())
  std::deque<Job> queue_;
  std::list<Worker> workers_;
  bool stop_ = false;
  uint64_t next_id_ = 1;
  size_t busy_ = 0;
  size_t hung_ = 0;
  WorkerPoolStats counters_;
};

}  // namespace sluice
