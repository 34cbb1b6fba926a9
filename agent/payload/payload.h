// Upstream payloads (CONTRACT.md "Upstream payloads"): one JSON document per
// event, or a FlatBuffers `Batch` of events. Both are built from the ring's
// stored events (body = a finished sluice.fb.Event) into caller-owned,
// reusable buffers, so steady-state encoding allocates nothing per event.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "buffer/ring.h"
#include "common/json.h"
#include "common/status.h"
#include "schemas/sluice_generated.h"

namespace sluice {

// Writes the JSON document of `event` into *out (replacing its contents):
// readings
//   {"agent":..,"seq":..,"sensor":..,"ts_us":..,"value":..,"unit":..,"quality":..}
// alerts
//   {"agent":..,"seq":..,"rule":..,"state":..,"severity":..,"ts_us":..,
//    "value":..,"message":..,"labels":{..}}
// in that field order. seq is event.seq. Numbers are the shortest text that
// round-trips; NaN and infinities are null. Returns Corruption (and leaves
// *out empty) if the body is not a valid Event. Thread-safe (pure).
Status EventToJson(std::string_view agent, const StoredEvent& event, std::string* out);

// Builds one `Batch {agent, events}` message from stored events, copying each
// event table. Reuse one encoder: Clear() keeps its memory.
// Not thread-safe.
class BatchEncoder {
 public:
  explicit BatchEncoder(std::string agent, size_t initial_bytes = 64 * 1024);

  // Starts a new, empty batch.
  void Clear();
  // Adds `event` (its stored seq wins over the body's). Returns Corruption,
  // adding nothing, if the body is not a valid Event.
  Status Add(const StoredEvent& event);
  size_t count() const { return events_.size(); }
  uint64_t first_seq() const { return first_seq_; }
  uint64_t last_seq() const { return last_seq_; }

  // Finishes the batch. REQUIRES: not finished since Clear(). The bytes stay
  // valid until Clear().
  void Finish();
  const uint8_t* data() const { return fbb_.GetBufferPointer(); }
  size_t size() const { return fbb_.GetSize(); }

 private:
  std::string agent_;
  flatbuffers::FlatBufferBuilder fbb_;
  std::vector<flatbuffers::Offset<fb::Event>> events_;
  std::vector<flatbuffers::Offset<fb::Label>> labels_;
  uint64_t first_seq_ = 0;
  uint64_t last_seq_ = 0;
};

}  // namespace sluice
