// A ReadingSink for driver tests: collects readings; can refuse everything
// (full pipeline) or block every Submit until released.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "drivers/driver.h"

namespace sluice {

class TestSink : public ReadingSink {
 public:
  Status Submit(Reading reading, int64_t timeout_us) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++attempts_;
    if (refuse_) {
      ++refused_;
      return Unavailable("test sink refuses");
    }
    if (blocked_) {
      cv_.wait_for(lock, std::chrono::microseconds(timeout_us), [this] { return !blocked_; });
      if (blocked_) {
        ++refused_;
        cv_.notify_all();
        return Unavailable("test sink blocked");
      }
    }
    readings_.push_back(std::move(reading));
    cv_.notify_all();
    return Status::Ok();
  }

  void SetRefuse(bool refuse) {
    std::lock_guard<std::mutex> lock(mu_);
    refuse_ = refuse;
  }
  void SetBlocked(bool blocked) {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ = blocked;
    cv_.notify_all();
  }
  // Waits (bounded) until at least `n` readings arrived; returns the count.
  size_t WaitFor(size_t n, int timeout_ms = 10000) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                 [&] { return readings_.size() >= n; });
    return readings_.size();
  }
  // Waits (bounded) until at least `n` submits were refused.
  size_t WaitForRefused(size_t n, int timeout_ms = 10000) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return refused_ >= n; });
    return refused_;
  }
  std::vector<Reading> readings() const {
    std::lock_guard<std::mutex> lock(mu_);
    return readings_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return readings_.size();
  }
  size_t refused() const {
    std::lock_guard<std::mutex> lock(mu_);
    return refused_;
  }
  size_t attempts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Reading> readings_;
  bool refuse_ = false;
  bool blocked_ = false;
  size_t refused_ = 0;
  size_t attempts_ = 0;
};

}  // namespace sluice
