#include "agent/payload/payload.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>

namespace sluice {
namespace {

const fb::Event* VerifiedEvent(const StoredEvent& e) {
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(e.body.data()),
                                 e.body.size());
  if (!verifier.VerifyBuffer<fb::Event>(nullptr)) return nullptr;
  return flatbuffers::GetRoot<fb::Event>(e.body.data());
}

std::string_view View(const flatbuffers::String* s) {
  return s ? std::string_view(s->c_str(), s->size()) : std::string_view();
}

const char* QualityText(fb::Quality q) {
  switch (q) {
    case fb::Quality::Good: return "good";
    case fb::Quality::Uncertain: return "uncertain";
    case fb::Quality::Bad: return "bad";
  }
  return "bad";
}

void AppendUint(uint64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

}  // namespace

Status EventToJson(std::string_view agent, const StoredEvent& event, std::string* out) {
  out->clear();
  const fb::Event* e = VerifiedEvent(event);
  if (e == nullptr) {
    return Corruption("event " + std::to_string(event.seq) + ": body is not a valid Event");
  }
  out->append("{\"agent\":");
  AppendJsonString(agent, out);
  out->append(",\"seq\":");
  AppendUint(event.seq, out);
  if (e->kind() == fb::Kind::Alert) {
    out->append(",\"rule\":");
    AppendJsonString(e->rule() ? View(e->rule()) : std::string_view(event.sensor), out);
    out->append(",\"state\":");
    AppendJsonString(View(e->state()), out);
    out->append(",\"severity\":");
    AppendJsonString(View(e->severity()), out);
    out->append(",\"ts_us\":");
    AppendInt(e->ts_us(), out);
    out->append(",\"value\":");
    AppendJsonDouble(e->value(), out);
    out->append(",\"message\":");
    AppendJsonString(View(e->message()), out);
    out->append(",\"labels\":{");
    if (const auto* labels = e->labels()) {
      bool first = true;
      for (const fb::Label* l : *labels) {
        if (l == nullptr) continue;
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(View(l->key()), out);
        out->push_back(':');
        AppendJsonString(View(l->value()), out);
      }
    }
    out->append("}}");
  } else {
    out->append(",\"sensor\":");
    AppendJsonString(e->sensor() ? View(e->sensor()) : std::string_view(event.sensor), out);
    out->append(",\"ts_us\":");
    AppendInt(e->ts_us(), out);
    out->append(",\"value\":");
    AppendJsonDouble(e->value(), out);
    out->append(",\"unit\":");
    AppendJsonString(View(e->unit()), out);
    out->append(",\"quality\":\"");
    out->append(QualityText(e->quality()));
    out->append("\"}");
  }
  return Status::Ok();
}

BatchEncoder::BatchEncoder(std::string agent, size_t initial_bytes)
    : agent_(std::move(agent)), fbb_(initial_bytes) {}

void BatchEncoder::Clear() {
  fbb_.Clear();
  events_.clear();
  first_seq_ = last_seq_ = 0;
}

Status BatchEncoder::Add(const StoredEvent& event) {
  const fb::Event* e = VerifiedEvent(event);
  if (e == nullptr) {
    return Corruption("event " + std::to_string(event.seq) + ": body is not a valid Event");
  }
  const auto str = [this](const flatbuffers::String* s) {
    return s ? fbb_.CreateString(s->c_str(), s->size()) : flatbuffers::Offset<flatbuffers::String>();
  };
  auto sensor = str(e->sensor());
  auto unit = str(e->unit());
  auto rule = str(e->rule());
  auto state = str(e->state());
  auto severity = str(e->severity());
  auto message = str(e->message());
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Label>>> labels;
  if (const auto* in = e->labels()) {
    labels_.clear();
    for (const fb::Label* l : *in) {
      if (l == nullptr) continue;
      auto k = str(l->key());
      auto v = str(l->value());
      labels_.push_back(fb::CreateLabel(fbb_, k, v));
    }
    labels = fbb_.CreateVector(labels_);
  }
  events_.push_back(fb::CreateEvent(fbb_, event.seq, e->ts_us(), e->kind(), sensor, e->value(),
                                    unit, e->quality(), rule, state, severity, message, labels));
  if (first_seq_ == 0) first_seq_ = event.seq;
  last_seq_ = event.seq;
  return Status::Ok();
}

void BatchEncoder::Finish() {
  auto agent = fbb_.CreateString(agent_);
  auto events = fbb_.CreateVector(events_);
  fbb_.Finish(fb::CreateBatch(fbb_, agent, events));
}

}  // namespace sluice
