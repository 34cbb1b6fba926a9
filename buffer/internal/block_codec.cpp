#include "buffer/internal/block_codec.h"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <utility>

#include "buffer/codec.h"
#include "buffer/internal/block_bits.h"
#include "buffer/internal/block_format.h"
#include "common/event.h"
#include "schemas/sluice_generated.h"

namespace sluice {
namespace {

using block::BitReader;
using block::BitsOf;
using block::BitWriter;
using block::DecimalValue;
using block::Diff;
using block::Header;
using block::HeaderRest;
using block::kFixed;
using block::kMagic;
using block::kMaxDecimals;
using block::kPerEventOverhead;
using block::kPow10;
using block::kVersion;
using block::Num;
using block::PutDict;
using block::PutU32;

// n with v == n / 10^k bit for bit (so -0.0, NaN and infinities never pass).
bool AsDecimal(double v, int k, int64_t* n) {
  if (!std::isfinite(v)) return false;
  const double scaled = v * kPow10[k];
  if (!(std::fabs(scaled) < 9007199254740992.0)) return false;  // 2^53
  const int64_t m = static_cast<int64_t>(std::nearbyint(scaled));
  for (int64_t c : {m, m - 1, m + 1}) {
    if (BitsOf(DecimalValue(c, k)) == BitsOf(v)) {
      *n = c;
      return true;
    }
  }
  return false;
}

// The Reading a stored event is, if its body is exactly what EncodeReading
// and SetEncodedSeq make of it and its columns agree with its body.
bool AsCompactReading(const StoredEvent& e, Reading* r) {
  if (e.kind != static_cast<int>(EventKind::kReading)) return false;
  if (!VerifyEncodedEvent(e.body.data(), e.body.size())) return false;
  const fb::Event* f = flatbuffers::GetRoot<fb::Event>(e.body.data());
  if (f->kind() != fb::Kind::Reading || f->seq() != e.seq || f->ts_us() != e.ts_us ||
      f->sensor() == nullptr || f->unit() == nullptr || f->sensor()->str() != e.sensor ||
      static_cast<uint8_t>(f->quality()) > static_cast<uint8_t>(Quality::kBad)) {
    return false;
  }
  r->sensor = e.sensor;
  r->unit = f->unit()->str();
  r->ts_us = e.ts_us;
  r->value = f->value();
  r->quality = static_cast<Quality>(f->quality());
  std::string again = EncodeReading(*r);
  SetEncodedSeq(&again, e.seq);
  return again == e.body;
}

// One (sensor, unit) series while encoding.
struct SeriesIn {
  std::vector<size_t> at;  // indexes into the events
  std::vector<Reading> readings;
};

void PutValues(const std::vector<Reading>& rs, BitWriter* w) {
  std::vector<uint64_t> bits;
  bits.reserve(rs.size());
  for (const Reading& r : rs) bits.push_back(BitsOf(r.value));
  BitWriter gorilla;
  gorilla.Bits(1, 1);
  block::PutXor(bits, &gorilla);
  // Decimal-scaled: the fewest decimals every value needs.
  int k = 0;
  bool decimal = true;
  std::vector<int64_t> ns(rs.size());
  for (size_t i = 0; i < rs.size() && decimal; ++i) {
    while (k <= kMaxDecimals && !AsDecimal(rs[i].value, k, &ns[i])) ++k;
    decimal = k <= kMaxDecimals;
  }
  for (size_t i = 0; i < rs.size() && decimal; ++i) decimal = AsDecimal(rs[i].value, k, &ns[i]);
  if (decimal) {
    BitWriter scaled;
    scaled.Bits(0, 1);
    scaled.Bits(static_cast<uint64_t>(k), 3);
    block::PutInts(ns, 0, &scaled);
    if (scaled.bits() <= gorilla.bits()) {
      w->Append(scaled);
      return;
    }
  }
  w->Append(gorilla);
}

}  // namespace

Status EncodeBlock(const std::vector<StoredEvent>& events, std::string* out) {
  if (events.size() > kMaxBlockEvents) {
    return InvalidArgument("block of " + Num(events.size()) + " events: the limit is " +
                           Num(kMaxBlockEvents));
  }
  Header h;
  h.count = events.size();
  size_t decoded = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0 && events[i].seq <= events[i - 1].seq) {
      return InvalidArgument("block: seq " + Num(events[i].seq) + " after " +
                             Num(events[i - 1].seq) + " (seqs must increase)");
    }
    decoded += events[i].body.size() + events[i].sensor.size() + kPerEventOverhead;
    if (decoded > kMaxBlockDecodedBytes) {
      return InvalidArgument("block: events exceed " + Num(kMaxBlockDecodedBytes) + " bytes");
    }
  }
  if (!events.empty()) {
    h.first_seq = events.front().seq;
    h.last_seq = events.back().seq;
    h.min_ts = h.max_ts = events.front().ts_us;
    for (const StoredEvent& e : events) {
      h.min_ts = std::min(h.min_ts, e.ts_us);
      h.max_ts = std::max(h.max_ts, e.ts_us);
    }
  }
  // Series in (sensor, unit) order: the dictionaries' order too.
  std::map<std::pair<std::string, std::string>, SeriesIn> series;
  std::vector<size_t> verbatim;
  Reading r;
  for (size_t i = 0; i < events.size(); ++i) {
    if (!AsCompactReading(events[i], &r)) {
      verbatim.push_back(i);
      continue;
    }
    SeriesIn& s = series[{r.sensor, r.unit}];
    s.at.push_back(i);
    s.readings.push_back(std::move(r));
    r = Reading();
  }
  std::vector<std::string> names, units;
  for (const auto& kv : series) {
    if (names.empty() || names.back() != kv.first.first) names.push_back(kv.first.first);
    units.push_back(kv.first.second);
  }
  std::sort(units.begin(), units.end());
  units.erase(std::unique(units.begin(), units.end()), units.end());

  BitWriter w;
  PutDict(names, &w);
  PutDict(units, &w);
  w.Ue(series.size());
  size_t name_idx = 0;
  int64_t seq_pred = 0, ts_pred = 0;
  std::vector<int64_t> col;
  for (const auto& kv : series) {
    const SeriesIn& s = kv.second;
    const size_t n = s.at.size();
    const size_t name =
        std::lower_bound(names.begin(), names.end(), kv.first.first) - names.begin();
    const size_t unit =
        std::lower_bound(units.begin(), units.end(), kv.first.second) - units.begin();
    w.Ue(name - name_idx);
    name_idx = name;
    w.Ue(unit);
    w.Ue(n - 1);
    // Seqs: the first from the block's, then differences (>= 1).
    w.Varint(events[s.at[0]].seq - h.first_seq);
    col.clear();
    for (size_t i = 1; i < n; ++i) {
      col.push_back(static_cast<int64_t>(events[s.at[i]].seq - events[s.at[i - 1]].seq));
    }
    block::PutInts(col, seq_pred, &w);
    if (!col.empty()) seq_pred = block::MinOf(col);
    // Timestamps: the first from the block's minimum, then differences
    // (PutInts packs those or their differences, whichever is smaller).
    w.Varint(static_cast<uint64_t>(Diff(s.readings[0].ts_us, h.min_ts)));
    col.clear();
    for (size_t i = 1; i < n; ++i) {
      col.push_back(Diff(s.readings[i].ts_us, s.readings[i - 1].ts_us));
    }
    block::PutInts(col, ts_pred, &w);
    if (!col.empty()) ts_pred = block::MinOf(col);
    // Qualities: one bit when all are good.
    col.clear();
    for (const Reading& x : s.readings) col.push_back(static_cast<int64_t>(x.quality));
    const bool all_good = block::MinOf(col) == 0 && *std::max_element(col.begin(), col.end()) == 0;
    w.Bits(all_good ? 0 : 1, 1);
    if (!all_good) block::PutInts(col, 0, &w);
    PutValues(s.readings, &w);
  }
  w.Ue(verbatim.size());
  for (size_t i : verbatim) {
    const StoredEvent& e = events[i];
    w.Varint(e.seq - h.first_seq);
    w.Varint(static_cast<uint64_t>(Diff(e.ts_us, h.min_ts)));
    w.SVarint(e.kind);
    w.Varint(e.sensor.size());
    w.Bytes(e.sensor);
    w.Varint(e.body.size());
    w.Bytes(e.body);
  }
  const std::string body = w.Finish();
  h.body_crc = Crc32c(body);
  // The size counts its own varint: settle it.
  std::string rest;
  uint64_t size = kFixed + body.size();
  for (;;) {  // grows monotonically: ends within a few rounds
    rest = HeaderRest(h, size);
    const uint64_t want = kFixed + rest.size() + body.size();
    if (want == size) break;
    size = want;
  }
  out->reserve(out->size() + size);
  out->append(kMagic, 3);
  out->push_back(static_cast<char>(kVersion));
  PutU32(out, Crc32c(rest));
  *out += rest;
  *out += body;
  return Status::Ok();
}

}  // namespace sluice
