// Incremental window aggregates for one (sensor, window) pair, shared by
// every rule that uses that pair. Not thread-safe (engine thread only).
//
// Semantics (all times are the sensor's event time, microseconds):
// - Sliding window W: the readings with timestamp in (head - W, head], where
//   head is the newest timestamp the window has seen. A reading exactly W
//   older than head is NOT in the window.
// - Count window last(N): the N readings with the newest timestamps (ties
//   in arrival order).
// - Tumbling window W: buckets [k*W, (k+1)*W) aligned to multiples of W
//   since the Unix epoch (1d buckets are UTC days). Functions evaluate the
//   last COMPLETED bucket: the one just before the bucket holding head. It
//   is empty (see below) when no reading fell into it. A late reading for
//   that bucket still counts; readings for older buckets are left out.
// - Empty window: count = 0 and sum = 0; avg, min, max, last, delta, rate
//   and stddev have no value (NaN).
// - last: the reading with the newest timestamp. delta: last - first
//   (0 with one reading). rate: (last - first) / (t_last - t_first) per
//   second; no value with fewer than two readings or t_last == t_first.
// - stddev: population standard deviation (divides by n); 0 for one reading.
// Readings arriving out of order are placed by timestamp; each costs O(k)
// with k the number of newer readings in the window. In-order readings cost
// O(1) amortized. Sums and variances are recomputed from the stored readings
// whenever as many readings have left the window as it holds (amortized
// O(1)), which bounds floating-point drift.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "rules/expr.h"
#include "rules/ring.h"

namespace sluice {
namespace rules {

class Window {
 public:
  explicit Window(const WindowSpec& spec) : spec_(spec) {}
  virtual ~Window() = default;
  Window(const Window&) = delete;
  Window& operator=(const Window&) = delete;

  const WindowSpec& spec() const { return spec_; }

  // Adds one reading (finite value, 0 <= ts < 2^62).
  virtual void Add(int64_t ts, double value) = 0;
  // The function's value now; NaN for "no value". REQUIRES: f != kAbsent,
  // Track(f) called (tumbling windows always track everything).
  virtual double Value(Func f) const = 0;
  // Starts maintaining what `f` needs beyond sums and counts (min/max
  // deques, running variance), rebuilt from the stored readings.
  virtual void Track(Func f) { (void)f; }
  // Readings dropped because the window hit its size cap.
  virtual uint64_t overflowed() const { return 0; }

  // Engine bookkeeping: true until the window sees its first live reading;
  // only such windows take refilled (historical) readings.
  bool filling = true;

 private:
  WindowSpec spec_;
};

// A sliding or count window stores at most `max_entries` readings (the
// oldest are dropped and counted beyond that), bounding memory.
std::unique_ptr<Window> MakeWindow(const WindowSpec& spec, size_t max_entries);

// Floor division for bucket alignment. REQUIRES: d > 0.
inline int64_t FloorDiv(int64_t a, int64_t d) {
  int64_t q = a / d;
  return (a % d != 0 && a < 0) ? q - 1 : q;
}

}  // namespace rules
}  // namespace sluice
