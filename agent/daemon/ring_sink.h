// The ReadingSink that feeds the ring: each reading is encoded on the
// caller's thread and queued for the writer's next group commit
// (Ring::Append, which applies backpressure up to `timeout_us`).
// Thread-safe. Used by sluiced and by sluice-bench sensors.
#pragma once

#include <utility>

#include "buffer/codec.h"
#include "buffer/ring.h"
#include "drivers/driver.h"

namespace sluice {

class RingSink final : public ReadingSink {
 public:
  // `ring` must outlive the sink.
  explicit RingSink(Ring& ring) : ring_(ring) {}
  Status Submit(Reading reading, int64_t timeout_us) override {
    Record rec;
    rec.kind = static_cast<int>(EventKind::kReading);
    rec.priority = kReadingPriority;
    rec.ts_us = reading.ts_us;
    rec.body = EncodeReading(reading);
    rec.sensor = std::move(reading.sensor);
    return ring_.Append(std::move(rec), timeout_us);
  }
  void CountDropped(uint64_t n) override { ring_.CountDropped(n); }

 private:
  Ring& ring_;
};

}  // namespace sluice
