// `driver = "simulated"`: a polled driver producing a synthetic signal.
//
// Params (CONTRACT.md "Driver params"):
//   shape  = "sine"   sine | random_walk | sawtooth | constant
//   min    = 0.0      lower bound of the signal
//   max    = 100.0    upper bound; REQUIRES min < max (except constant)
//   period = "1m"     sine and sawtooth period; REQUIRES > 0
//   seed   = 1        random_walk's PRNG seed
//   value  = (min+max)/2   constant only: the value returned
//
// Determinism: sine and sawtooth are pure functions of the sample's wall
// time modulo `period` (sine starts at the midpoint rising at t % period
// == 0; sawtooth rises linearly from min to max over each period).
// random_walk starts at the midpoint and takes one step per sample, each
// uniform in [-(max-min)/20, +(max-min)/20] from a PRNG seeded by `seed`,
// reflected back into [min, max]; the sequence depends only on the seed and
// the number of samples. constant always returns `value`.
#pragma once

#include <cstdint>
#include <memory>

#include "common/status.h"
#include "drivers/driver.h"

namespace sluice {

enum class SimulatedShape { kSine, kRandomWalk, kSawtooth, kConstant };

// Factory registered as "simulated".
StatusOr<std::unique_ptr<Driver>> CreateSimulatedDriver(const SensorSpec& spec,
                                                        Params& params,
                                                        DriverContext& ctx);

// Scheduler thread only (not thread-safe), like every polled driver.
class SimulatedDriver final : public Driver {
 public:
  SimulatedDriver(SimulatedShape shape, double min, double max, int64_t period_us,
                  uint64_t seed, double constant);

  bool polled() const override { return true; }
  StatusOr<double> Sample(int64_t wall_us) override;

 private:
  uint64_t NextRandom();  // splitmix64

  SimulatedShape shape_;
  double min_;
  double max_;
  int64_t period_us_;
  uint64_t state_;
  double constant_;
  double walk_;
};

}  // namespace sluice
