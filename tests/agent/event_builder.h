// Builds stored events for agent tests directly with the generated
// FlatBuffers code (independent of buffer/codec).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "buffer/ring.h"
#include "schemas/sluice_generated.h"

namespace sluice {
namespace testing {

inline StoredEvent MakeReadingEvent(uint64_t seq, const std::string& sensor, int64_t ts_us,
                                    double value, const std::string& unit,
                                    fb::Quality quality = fb::Quality::Good) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.Finish(fb::CreateEventDirect(fbb, seq, ts_us, fb::Kind::Reading, sensor.c_str(), value,
                                   unit.c_str(), quality));
  StoredEvent e;
  e.seq = seq;
  e.ts_us = ts_us;
  e.kind = 0;
  e.sensor = sensor;
  e.body.assign(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  return e;
}

inline StoredEvent MakeAlertEvent(uint64_t seq, const std::string& rule, const std::string& state,
                                  const std::string& severity, int64_t ts_us, double value,
                                  const std::string& message,
                                  const std::vector<std::pair<std::string, std::string>>& labels) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<fb::Label>> ls;
  for (const auto& kv : labels) {
    ls.push_back(fb::CreateLabelDirect(fbb, kv.first.c_str(), kv.second.c_str()));
  }
  fbb.Finish(fb::CreateEventDirect(fbb, seq, ts_us, fb::Kind::Alert, nullptr, value, nullptr,
                                   fb::Quality::Good, rule.c_str(), state.c_str(),
                                   severity.c_str(), message.c_str(), &ls));
  StoredEvent e;
  e.seq = seq;
  e.ts_us = ts_us;
  e.kind = 1;
  e.sensor = rule;
  e.body.assign(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  return e;
}

}  // namespace testing
}  // namespace sluice
