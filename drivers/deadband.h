// The deadband/heartbeat rule of SensorSpec, for drivers that submit their
// own readings (active drivers) and for the Scheduler, which applies it to
// polled sensors through this class. Not thread-safe; one per sensor.
#pragma once

#include <cmath>
#include <cstdint>

#include "drivers/driver.h"

namespace sluice {

class DeadbandFilter {
 public:
  // True if `value` (after scale/offset) at monotonic time `mono_us` should
  // be submitted: the first one, deadband 0, a move of more than the
  // deadband from the last submitted value, or heartbeat_us passed since it.
  bool Want(const SensorSpec& spec, double value, int64_t mono_us) const {
    return !has_submitted_ || spec.deadband <= 0 ||
           std::fabs(value - last_submitted_) > spec.deadband ||
           (spec.heartbeat_us > 0 && mono_us - last_submit_mono_us_ >= spec.heartbeat_us);
  }
  // Records a submitted reading.
  void Submitted(double value, int64_t mono_us) {
    has_submitted_ = true;
    last_submitted_ = value;
    last_submit_mono_us_ = mono_us;
  }

 private:
  bool has_submitted_ = false;
  double last_submitted_ = 0;
  int64_t last_submit_mono_us_ = 0;
};

}  // namespace sluice
