#include "agent/payload/stored_reading.h"

#include <flatbuffers/flatbuffers.h>

#include "buffer/codec.h"
#include "schemas/sluice_generated.h"

namespace sluice {

bool DecodeStoredReading(const StoredEvent& e, Reading* out) {
  if (e.kind != static_cast<int>(EventKind::kReading)) return false;
  if (!VerifyEncodedEvent(e.body.data(), e.body.size())) return false;
  const fb::Event* ev = flatbuffers::GetRoot<fb::Event>(e.body.data());
  out->sensor = ev->sensor() ? ev->sensor()->str() : e.sensor;
  out->ts_us = ev->ts_us();
  out->value = ev->value();
  out->unit = ev->unit() ? ev->unit()->str() : std::string();
  switch (ev->quality()) {
    case fb::Quality::Good: out->quality = Quality::kGood; break;
    case fb::Quality::Uncertain: out->quality = Quality::kUncertain; break;
    default: out->quality = Quality::kBad; break;
  }
  return true;
}

}  // namespace sluice
