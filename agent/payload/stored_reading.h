// Decoding a stored ring row (StoredEvent, body = a finished sluice.fb.Event)
// back into a Reading: the rules runner's live feed and refill, and
// `sluice rules backtest`. Thread-safe (pure function).
#pragma once

#include "buffer/ring.h"
#include "common/event.h"

namespace sluice {

// True if `e` is a reading whose body verifies; fills *out (sensor from the
// row, value, unit, quality and ts from the body). Alerts and corrupt rows
// return false.
bool DecodeStoredReading(const StoredEvent& e, Reading* out);

}  // namespace sluice
