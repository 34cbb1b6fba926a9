#include "buffer/codec.h"

#include <flatbuffers/flatbuffers.h>

#include <vector>

#include "schemas/sluice_generated.h"

namespace sluice {
namespace {

std::string Finish(flatbuffers::FlatBufferBuilder& fbb,
                   flatbuffers::Offset<fb::Event> event) {
  fbb.Finish(event);
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()),
                     fbb.GetSize());
}

fb::Quality ToFb(Quality q) {
  switch (q) {
    case Quality::kGood: return fb::Quality::Good;
    case Quality::kUncertain: return fb::Quality::Uncertain;
    case Quality::kBad: return fb::Quality::Bad;
  }
  return fb::Quality::Bad;
}

}  // namespace

std::string EncodeReading(const Reading& r) {
  flatbuffers::FlatBufferBuilder fbb(64 + r.sensor.size() + r.unit.size());
  // force_defaults keeps seq (0 now) in the buffer so SetEncodedSeq can
  // overwrite it in place.
  fbb.ForceDefaults(true);
  auto sensor = fbb.CreateString(r.sensor);
  auto unit = fbb.CreateString(r.unit);
  fb::EventBuilder b(fbb);
  b.add_seq(0);
  b.add_ts_us(r.ts_us);
  b.add_value(r.value);
  b.add_sensor(sensor);
  b.add_unit(unit);
  b.add_kind(fb::Kind::Reading);
  b.add_quality(ToFb(r.quality));
  return Finish(fbb, b.Finish());
}

std::string EncodeAlert(const Alert& a) {
  flatbuffers::FlatBufferBuilder fbb(128 + a.message.size());
  fbb.ForceDefaults(true);
  auto rule = fbb.CreateString(a.rule);
  auto state = fbb.CreateString(a.state);
  auto severity = fbb.CreateString(a.severity);
  auto message = fbb.CreateString(a.message);
  std::vector<flatbuffers::Offset<fb::Label>> labels;
  labels.reserve(a.labels.size());
  for (const auto& kv : a.labels) {
    auto k = fbb.CreateString(kv.first);
    auto v = fbb.CreateString(kv.second);
    labels.push_back(fb::CreateLabel(fbb, k, v));
  }
  auto label_vec = fbb.CreateVector(labels);
  fb::EventBuilder b(fbb);
  b.add_seq(0);
  b.add_ts_us(a.ts_us);
  b.add_value(a.value);
  b.add_rule(rule);
  b.add_state(state);
  b.add_severity(severity);
  b.add_message(message);
  b.add_labels(label_vec);
  b.add_kind(fb::Kind::Alert);
  return Finish(fbb, b.Finish());
}

void SetEncodedSeq(std::string* body, uint64_t seq) {
  // The generated code has no mutators (flatc runs without --gen-mutable);
  // Table::SetField is what they would call. Fails only if seq is absent,
  // which EncodeReading/EncodeAlert never produce.
  auto* table = flatbuffers::GetMutableRoot<flatbuffers::Table>(&(*body)[0]);
  bool ok = table->SetField<uint64_t>(fb::Event::VT_SEQ, seq, 0);
  (void)ok;
}

bool VerifyEncodedEvent(const void* data, size_t size) {
  if (data == nullptr || size < 8) return false;
  flatbuffers::Verifier v(static_cast<const uint8_t*>(data), size);
  return v.VerifyBuffer<fb::Event>(nullptr);
}

}  // namespace sluice
