// A simulated GPIO chip behind the GpioChip seam: named lines with
// physical levels set by the test (from any thread); requested lines see
// active_low applied to values and edges, get edge events queued as the
// kernel would, refuse a second request (busy), and fail once the chip is
// "unplugged". Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "drivers/gpio/gpio_chip.h"

namespace sluice {
namespace testing {

class SimGpioChip {
 public:
  SimGpioChip(std::string name, std::vector<std::string> line_names)
      : name_(std::move(name)), names_(std::move(line_names)), levels_(names_.size(), 0) {}

  // Sets a line's physical level; a change is an edge for its requester.
  void SetLevel(int offset, int level) {
    std::lock_guard<std::mutex> lock(mu_);
    int old = levels_[size_t(offset)];
    levels_[size_t(offset)] = level;
    if (old == level) return;
    auto it = requested_.find(offset);
    if (it == requested_.end()) return;
    State& s = *it->second;
    bool rising = (level != 0) != s.req.active_low;  // logical
    bool want = s.req.edge == GpioEdge::kBoth || (s.req.edge == GpioEdge::kRising && rising) ||
                (s.req.edge == GpioEdge::kFalling && !rising);
    if (!want) return;
    s.queue.push_back(GpioEvent{rising, ++clock_ns_});
    cv_.notify_all();
  }
  // Every later operation on the chip or its lines fails, as after unplug.
  void SetGone(bool gone) {
    std::lock_guard<std::mutex> lock(mu_);
    gone_ = gone;
    cv_.notify_all();
  }
  GpioBias last_bias() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_bias_;
  }
  int opens() const {
    std::lock_guard<std::mutex> lock(mu_);
    return opens_;
  }

  GpioChipOpener Opener() {
    return [this](const std::string& chip) -> StatusOr<std::unique_ptr<GpioChip>> {
      std::lock_guard<std::mutex> lock(mu_);
      if (chip != name_ || gone_) {
        return Status(StatusCode::kNotFound, "gpio: cannot open chip \"" + chip + "\"");
      }
      ++opens_;
      return std::unique_ptr<GpioChip>(new Chip(this));
    };
  }

 private:
  struct State {
    GpioLineRequest req;
    std::deque<GpioEvent> queue;
    bool woken = false;
  };

  class Line : public GpioLine {
   public:
    Line(SimGpioChip* sim, int offset, State* s) : sim_(sim), offset_(offset), s_(s) {}
    ~Line() override {
      std::lock_guard<std::mutex> lock(sim_->mu_);
      sim_->requested_.erase(offset_);
    }
    StatusOr<int> Value() override {
      std::lock_guard<std::mutex> lock(sim_->mu_);
      if (sim_->gone_) return IoError("gpio sim: reading the value: No such device");
      return (sim_->levels_[size_t(offset_)] != 0) != s_->req.active_low ? 1 : 0;
    }
    Status WaitEvents(int64_t timeout_us, std::vector<GpioEvent>* out) override {
      std::unique_lock<std::mutex> lock(sim_->mu_);
      sim_->cv_.wait_for(lock, std::chrono::microseconds(timeout_us),
                         [&] { return sim_->gone_ || s_->woken || !s_->queue.empty(); });
      if (sim_->gone_)
        return IoError("gpio sim line " + std::to_string(offset_) + ": the line went away");
      s_->woken = false;
      while (!s_->queue.empty()) {
        out->push_back(s_->queue.front());
        s_->queue.pop_front();
      }
      return Status::Ok();
    }
    void Wake() override {
      std::lock_guard<std::mutex> lock(sim_->mu_);
      s_->woken = true;
      sim_->cv_.notify_all();
    }

   private:
    SimGpioChip* sim_;
    int offset_;
    State* s_;
  };

  class Chip : public GpioChip {
   public:
    explicit Chip(SimGpioChip* sim) : sim_(sim) {}
    StatusOr<std::unique_ptr<GpioLine>> Request(const GpioLineRequest& r) override {
      std::lock_guard<std::mutex> lock(sim_->mu_);
      int offset = r.offset;
      if (offset < 0) {
        for (size_t i = 0; i < sim_->names_.size(); ++i) {
          if (sim_->names_[i] == r.name) offset = int(i);
        }
        if (offset < 0) {
          return Status(StatusCode::kNotFound,
                        "gpio " + sim_->name_ + " has no line named \"" + r.name + "\"");
        }
      } else if (size_t(offset) >= sim_->names_.size()) {
        return Status(StatusCode::kNotFound,
                      "gpio " + sim_->name_ + ": no line " + std::to_string(offset));
      }
      if (sim_->requested_.count(offset) != 0) {
        return IoError("gpio " + sim_->name_ + " line " + std::to_string(offset) +
                       ": request failed: Device or resource busy");
      }
      auto state = std::make_unique<State>();
      state->req = r;
      State* s = state.get();
      sim_->requested_[offset] = std::move(state);
      sim_->last_bias_ = r.bias;
      return std::unique_ptr<GpioLine>(new Line(sim_, offset, s));
    }
    const std::string& name() const override { return sim_->name_; }

   private:
    SimGpioChip* sim_;
  };

  const std::string name_;
  const std::vector<std::string> names_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> levels_;
  std::map<int, std::unique_ptr<State>> requested_;
  bool gone_ = false;
  int64_t clock_ns_ = 0;
  GpioBias last_bias_ = GpioBias::kAsIs;
  int opens_ = 0;
};

}  // namespace testing
}  // namespace sluice
