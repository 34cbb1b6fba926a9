#include "drivers/simulated.h"

#include <cmath>

namespace sluice {
namespace {

constexpr double kPi = 3.14159265358979323846;

// Position within the period in [0, 1), also for negative wall times.
double Phase(int64_t wall_us, int64_t period_us) {
  int64_t r = wall_us % period_us;
  if (r < 0) r += period_us;
  return static_cast<double>(r) / static_cast<double>(period_us);
}

}  // namespace

SimulatedDriver::SimulatedDriver(SimulatedShape shape, double min, double max,
                                 int64_t period_us, uint64_t seed, double constant)
    : shape_(shape),
      min_(min),
      max_(max),
      period_us_(period_us),
      state_(seed),
      constant_(constant),
      walk_((min + max) / 2) {}

uint64_t SimulatedDriver::NextRandom() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

StatusOr<double> SimulatedDriver::Sample(int64_t wall_us) {
  switch (shape_) {
    case SimulatedShape::kSine: {
      double mid = (min_ + max_) / 2;
      double amp = (max_ - min_) / 2;
      return mid + amp * std::sin(2 * kPi * Phase(wall_us, period_us_));
    }
    case SimulatedShape::kSawtooth:
      return min_ + (max_ - min_) * Phase(wall_us, period_us_);
    case SimulatedShape::kConstant:
      return constant_;
    case SimulatedShape::kRandomWalk: {
      double unit = static_cast<double>(NextRandom() >> 11) * 0x1.0p-53;  // [0, 1)
      double step = (max_ - min_) / 20 * (2 * unit - 1);
      double v = walk_ + step;
      if (v > max_) v = max_ - (v - max_);
      if (v < min_) v = min_ + (min_ - v);
      walk_ = std::fmin(max_, std::fmax(min_, v));
      return walk_;
    }
  }
  return Internal("unknown shape");
}

StatusOr<std::unique_ptr<Driver>> CreateSimulatedDriver(const SensorSpec& /*spec*/,
                                                        Params& params,
                                                        DriverContext& /*ctx*/) {
  StatusOr<std::string> shape_name = params.String("shape", "sine");
  if (!shape_name.ok()) return shape_name.status();
  SimulatedShape shape;
  if (*shape_name == "sine") shape = SimulatedShape::kSine;
  else if (*shape_name == "random_walk") shape = SimulatedShape::kRandomWalk;
  else if (*shape_name == "sawtooth") shape = SimulatedShape::kSawtooth;
  else if (*shape_name == "constant") shape = SimulatedShape::kConstant;
  else
    return params.ErrorAt("shape", "must be one of sine, random_walk, sawtooth, constant"
                                   " (got \"" + *shape_name + "\")");

  StatusOr<double> min = params.Number("min", 0.0);
  if (!min.ok()) return min.status();
  StatusOr<double> max = params.Number("max", 100.0);
  if (!max.ok()) return max.status();
  StatusOr<int64_t> period = params.Duration("period", 60 * 1000000ll);
  if (!period.ok()) return period.status();
  StatusOr<int64_t> seed = params.Integer("seed", 1);
  if (!seed.ok()) return seed.status();
  double constant = (*min + *max) / 2;
  if (shape == SimulatedShape::kConstant) {
    StatusOr<double> v = params.Number("value", constant);
    if (!v.ok()) return v.status();
    constant = *v;
  } else if (!(*min < *max)) {
    return params.ErrorAt(params.Has("max") ? "max" : "min",
                          "must give min < max (min " + std::to_string(*min) +
                              ", max " + std::to_string(*max) + ")");
  }
  if (*period <= 0) return params.ErrorAt("period", "must be greater than 0");
  return std::unique_ptr<Driver>(new SimulatedDriver(
      shape, *min, *max, *period, static_cast<uint64_t>(*seed), constant));
}

}  // namespace sluice
