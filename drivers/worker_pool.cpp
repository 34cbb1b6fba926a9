#include "drivers/worker_pool.h"

#include <chrono>

#include "common/log.h"

namespace sluice {

WorkerPool::WorkerPool() : WorkerPool(Options()) {}

WorkerPool::WorkerPool(Options options) : options_(options) {
  if (options_.base == 0) options_.base = 1;
  if (options_.max < options_.base) options_.max = options_.base;
}

WorkerPool::~WorkerPool() { Stop(); }

uint64_t WorkerPool::Submit(std::string label, std::function<void()> job) {
  std::vector<std::thread> reaped;
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return 0;
    ReapLocked(&reaped);
    id = next_id_++;
    queue_.push_back(Job{id, std::move(label), std::move(job)});
    GrowLocked();
  }
  work_cv_.notify_one();
  for (std::thread& t : reaped) t.join();
  return id;
}

void WorkerPool::MarkHung(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Worker& w : workers_) {
    if (!w.exited && w.job_id == id && !w.hung) {
      w.hung = true;
      ++hung_;
      if (!stop_) GrowLocked();
      return;
    }
  }
}

void WorkerPool::GrowLocked() {
  while (counters_.threads - hung_ < options_.base && counters_.threads < options_.max) {
    if (counters_.threads >= options_.base) ++counters_.grown;
    SpawnLocked();
  }
}

void WorkerPool::SpawnLocked() {
  workers_.emplace_back();
  Worker* w = &workers_.back();
  ++counters_.threads;
  if (counters_.threads > counters_.peak_threads) counters_.peak_threads = counters_.threads;
  w->thread = std::thread([this, w] { Run(w); });
}

void WorkerPool::ReapLocked(std::vector<std::thread>* out) {
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (it->exited) {
      out->push_back(std::move(it->thread));
      it = workers_.erase(it);
    } else {
      ++it;
    }
  }
}

void WorkerPool::Run(Worker* self) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // Idle here. Exit on stop, or when surplus (more hung-free threads than
    // `base`) and there is nothing to do.
    work_cv_.wait(lock, [&] {
      return stop_ || !queue_.empty() || counters_.threads - hung_ > options_.base;
    });
    if (stop_ || queue_.empty()) break;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    self->job_id = job.id;
    self->label = job.label;
    ++busy_;
    lock.unlock();
    job.fn();
    job.fn = nullptr;  // destroy captures outside the lock's critical path
    lock.lock();
    --busy_;
    if (self->hung) {
      self->hung = false;
      --hung_;
    }
    self->job_id = 0;
    self->label.clear();
    ++counters_.jobs;
  }
  self->exited = true;
  --counters_.threads;
  done_cv_.notify_all();
  // Another idle thread may now be surplus-free or needed: nothing to do;
  // its own predicate is re-evaluated on the next notify.
}

bool WorkerPool::StopWithin(int64_t max_wait_us) {
  std::vector<std::thread> reaped;
  // A deadline for condition_variable waits, which need steady_clock.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::microseconds(max_wait_us);
  {
    std::unique_lock<std::mutex> lock(mu_);
    stop_ = true;
    queue_.clear();
    work_cv_.notify_all();
    while (counters_.threads > 0) {
      auto wait = std::chrono::microseconds(options_.stop_warn_us);
      if (max_wait_us >= 0) {
        auto left = std::chrono::duration_cast<std::chrono::microseconds>(
            give_up - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
          ReapLocked(&reaped);
          lock.unlock();
          for (std::thread& t : reaped) t.join();
          return false;  // stop_ stays set: the stuck threads exit when they return
        }
        if (left < wait) wait = left;
      }
      if (done_cv_.wait_for(lock, wait, [&] { return counters_.threads == 0; })) {
        break;
      }
      std::string who;
      for (const Worker& w : workers_) {
        if (w.exited || w.job_id == 0) continue;
        who += (who.empty() ? "" : ", ") + w.label;
      }
      LogWarn("drivers", "stopping: still waiting for blocked reads of " + who +
                             " (a blocking driver must bound its own I/O)");
    }
    ReapLocked(&reaped);
  }
  for (std::thread& t : reaped) t.join();
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = false;
  return true;
}

bool WorkerPool::Saturated() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_.threads >= options_.max && hung_ >= counters_.threads;
}

WorkerPoolStats WorkerPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  WorkerPoolStats s = counters_;
  s.busy = busy_;
  s.hung = hung_;
  s.queued = queue_.size();
  return s;
}

}  // namespace sluice
