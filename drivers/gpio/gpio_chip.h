// The GPIO seam: a chip hands out requested input lines that are read by
// value or watched for edges. The real one is libgpiod v1 (gpiod_adapter);
// tests plug in a simulated chip.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice {

enum class GpioEdge { kNone, kRising, kFalling, kBoth };
enum class GpioBias { kAsIs, kDisable, kPullUp, kPullDown };

struct GpioLineRequest {
  int offset = -1;   // the line's offset on the chip, or
  std::string name;  // its name (looked up when offset < 0)
  bool active_low = false;
  GpioBias bias = GpioBias::kAsIs;
  GpioEdge edge = GpioEdge::kNone;  // kNone: an input read by value
  std::string consumer = "sluice";
};

// One edge. `rising` is in logical terms: with active_low, a physical
// falling edge is a logical rising one (as the kernel reports it).
struct GpioEvent {
  bool rising = false;
  int64_t ts_ns = 0;
};

// A requested line; released when destroyed. Must not outlive its chip.
// One thread uses it, except Wake().
class GpioLine {
 public:
  virtual ~GpioLine() = default;
  // The logical value (0 or 1; active_low applied).
  virtual StatusOr<int> Value() = 0;
  // Edge requests only: waits up to `timeout_us` for events and appends
  // every one pending. Returns Ok with nothing appended after a timeout or
  // a Wake(); an error when the line or chip is gone.
  virtual Status WaitEvents(int64_t timeout_us, std::vector<GpioEvent>* out) = 0;
  // Makes a WaitEvents() in progress (or the next one) return promptly.
  // Thread-safe.
  virtual void Wake() = 0;
};

class GpioChip {
 public:
  virtual ~GpioChip() = default;
  // Errors: no such line (offset out of range, unknown name), line busy.
  virtual StatusOr<std::unique_ptr<GpioLine>> Request(const GpioLineRequest& request) = 0;
  virtual const std::string& name() const = 0;
};

// Opens a chip by name ("gpiochip0"), path ("/dev/gpiochip0"), label or
// number.
using GpioChipOpener = std::function<StatusOr<std::unique_ptr<GpioChip>>(const std::string&)>;

// The libgpiod v1 chip (gpiod_chip_open_lookup).
StatusOr<std::unique_ptr<GpioChip>> OpenGpiodChip(const std::string& chip);

}  // namespace sluice
