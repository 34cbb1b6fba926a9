// FlatBuffers encoding of events (schemas/sluice.fbs) for the ring's `body`
// column and the uplink's payloads. Thread-safe (pure functions).
#pragma once

#include <cstdint>
#include <string>

#include "common/event.h"
#include "common/status.h"

namespace sluice {

// Encodes a reading / an alert as a finished `sluice.fb.Event` with seq 0.
// The seq field is always present so the writer can set it in place.
std::string EncodeReading(const Reading& r);
std::string EncodeAlert(const Alert& a);

// Sets the seq of an encoded Event in place. REQUIRES: body came from
// EncodeReading/EncodeAlert.
void SetEncodedSeq(std::string* body, uint64_t seq);

// Verifies a stored body (FlatBuffers verifier). A row that fails is
// corrupt and is skipped and counted by readers, never trusted.
bool VerifyEncodedEvent(const void* data, size_t size);

}  // namespace sluice
