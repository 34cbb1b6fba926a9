// libFuzzer target for the payload decoders: a stored event's body as the
// uplink's JSON encoder, the FlatBuffers batch encoder and the rules'
// reading decoder read it, and a received `Batch` as a consumer (the tests,
// sluice-bench) verifies and reads it. Built with -DSLUICE_FUZZ=ON and clang
// (agent/payload/CMakeLists.txt).
//
// Input: byte 0 picks the mode, the rest is the bytes.
//   even: a stored body. EventToJson, BatchEncoder::Add and
//         DecodeStoredReading accept it exactly when VerifyEncodedEvent
//         does; the JSON they make parses (invalid UTF-8 replaced, NaN as
//         null) and names the row's seq; the batch they make verifies and
//         holds the event with the row's seq.
//   odd:  a received Batch. A batch the verifier accepts is read field by
//         field, and each event, copied into a stored body, goes through the
//         encoders above with the same checks.
#include <flatbuffers/flatbuffers.h>

#include <sanitizer/common_interface_defs.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "agent/payload/payload.h"
#include "agent/payload/stored_reading.h"
#include "buffer/codec.h"
#include "common/json_parse.h"
#include "schemas/sluice_generated.h"

using namespace sluice;

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  // Through the sanitizer's report stream: it stays open under
  // -close_fd_mask=2 (which silences the product's logs).
  __sanitizer_report_error_summary((std::string("fuzz_payload: check failed: ") + what).c_str());
  __builtin_trap();
}

void FuzzStored(const StoredEvent& row) {
  const bool valid = VerifyEncodedEvent(row.body.data(), row.body.size());
  std::string json;
  Status s = EventToJson("agent-\xff", row, &json);
  Check(s.ok() == valid, "EventToJson accepts exactly the verified bodies");
  if (s.ok()) {
    JsonLimits limits;
    limits.max_bytes = 1 << 24;
    auto doc = ParseJson(json, limits);
    Check(doc.ok(), "EventToJson makes valid JSON");
    const JsonValue* seq = doc->Find("seq");
    Check(seq != nullptr && seq->is_number(), "the JSON has a seq");
  } else {
    Check(json.empty(), "a refused body leaves no JSON");
  }
  static BatchEncoder enc("agent", 256);
  enc.Clear();
  s = enc.Add(row);
  Check(s.ok() == valid, "BatchEncoder::Add accepts exactly the verified bodies");
  Check(enc.count() == (valid ? 1u : 0u), "BatchEncoder::Add adds nothing on error");
  enc.Finish();
  flatbuffers::Verifier v(enc.data(), enc.size());
  Check(fb::VerifyBatchBuffer(v), "the encoded batch verifies");
  const fb::Batch* batch = fb::GetBatch(enc.data());
  Check(batch->events() != nullptr && batch->events()->size() == enc.count(), "batch size");
  if (valid) Check(batch->events()->Get(0)->seq() == row.seq, "the row's seq wins");
  Reading r;
  const bool reading = DecodeStoredReading(row, &r);
  Check(!reading || valid, "DecodeStoredReading refuses corrupt bodies");
}

// Copies one event of a received batch into a stored body.
std::string StoredBody(const fb::Event* e) {
  flatbuffers::FlatBufferBuilder fbb(256);
  const auto str = [&](const flatbuffers::String* s) {
    return s ? fbb.CreateString(s->c_str(), s->size()) : flatbuffers::Offset<flatbuffers::String>();
  };
  auto sensor = str(e->sensor());
  auto unit = str(e->unit());
  auto rule = str(e->rule());
  auto state = str(e->state());
  auto severity = str(e->severity());
  auto message = str(e->message());
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Label>>> labels;
  if (const auto* in = e->labels()) {
    std::vector<flatbuffers::Offset<fb::Label>> out;
    for (const fb::Label* l : *in) {
      if (l != nullptr) out.push_back(fb::CreateLabel(fbb, str(l->key()), str(l->value())));
    }
    labels = fbb.CreateVector(out);
  }
  fbb.Finish(fb::CreateEvent(fbb, e->seq(), e->ts_us(), e->kind(), sensor, e->value(), unit,
                             e->quality(), rule, state, severity, message, labels));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

void FuzzBatch(const uint8_t* data, size_t size) {
  // A consumer reads a received payload from its own (malloc-aligned) buffer.
  std::string copy(reinterpret_cast<const char*>(data), size);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(copy.data());
  flatbuffers::Verifier v(p, size);
  if (!fb::VerifyBatchBuffer(v)) return;
  const fb::Batch* batch = fb::GetBatch(p);
  volatile size_t sink = batch->agent() ? batch->agent()->size() : 0;
  if (batch->events() == nullptr) return;
  for (const fb::Event* e : *batch->events()) {
    if (e == nullptr) continue;
    StoredEvent row;
    row.seq = e->seq();
    row.kind = static_cast<int>(e->kind());
    row.sensor = "row";
    row.body = StoredBody(e);
    Check(VerifyEncodedEvent(row.body.data(), row.body.size()), "copied event verifies");
    FuzzStored(row);
    sink = sink + row.body.size();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] % 2 == 0) {
    StoredEvent row;
    row.seq = 1 + data[0] / 2;
    row.kind = data[0] & 2 ? 1 : 0;
    row.sensor = "row";
    row.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
    FuzzStored(row);
  } else {
    FuzzBatch(data + 1, size - 1);
  }
  return 0;
}
