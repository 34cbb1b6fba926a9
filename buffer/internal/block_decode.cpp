#include "buffer/internal/block_codec.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>

#include "buffer/codec.h"
#include "buffer/internal/block_bits.h"
#include "buffer/internal/block_format.h"
#include "common/event.h"

namespace sluice {
namespace {

using block::BitReader;
using block::BitsOf;
using block::DecimalValue;
using block::Diff;
using block::DoubleOf;
using block::GetDict;
using block::Header;
using block::kFixed;
using block::kMaxDecimals;
using block::kPerEventOverhead;
using block::Num;
using block::ParseHeader;
using block::PutU32;
using block::Sum;

// One series while decoding.
struct SeriesOut {
  size_t name = 0, unit = 0;
  std::vector<uint64_t> seqs;
  std::vector<int64_t> ts;
  std::vector<int64_t> quality;  // empty: all good
  std::vector<uint64_t> values;  // bit patterns
};

// Seqs of a series of n: within the block's range, increasing.
bool GetSeqs(BitReader* r, const Header& h, size_t n, int64_t* pred, std::vector<int64_t>* col,
             std::vector<uint64_t>* seqs) {
  const uint64_t off = r->Varint();
  if (r->failed() || off > h.last_seq - h.first_seq || !block::GetInts(r, n - 1, *pred, col)) {
    return false;
  }
  seqs->resize(n);
  uint64_t cur = h.first_seq + off;
  (*seqs)[0] = cur;
  for (size_t i = 1; i < n; ++i) {
    const uint64_t d = static_cast<uint64_t>((*col)[i - 1]);
    if (d == 0 || d > h.last_seq - cur) return false;
    cur += d;
    (*seqs)[i] = cur;
  }
  if (!col->empty()) *pred = block::MinOf(*col);
  return true;
}

// Timestamps of a series of n: within the block's range.
bool GetTimes(BitReader* r, const Header& h, size_t n, int64_t* pred, std::vector<int64_t>* col,
              std::vector<int64_t>* ts) {
  const uint64_t off = r->Varint();
  if (r->failed() || off > static_cast<uint64_t>(Diff(h.max_ts, h.min_ts)) ||
      !block::GetInts(r, n - 1, *pred, col)) {
    return false;
  }
  ts->resize(n);
  (*ts)[0] = Sum(h.min_ts, static_cast<int64_t>(off));
  for (size_t i = 1; i < n; ++i) {
    (*ts)[i] = Sum((*ts)[i - 1], (*col)[i - 1]);
    if ((*ts)[i] < h.min_ts || (*ts)[i] > h.max_ts) return false;
  }
  if (!col->empty()) *pred = block::MinOf(*col);
  return true;
}

bool GetValues(BitReader* r, size_t n, std::vector<int64_t>* col, std::vector<uint64_t>* values) {
  if (r->Bits(1) == 1) return block::GetXor(r, n, values);
  const int k = static_cast<int>(r->Bits(3));
  if (r->failed() || k > kMaxDecimals || !block::GetInts(r, n, 0, col)) return false;
  values->resize(n);
  for (size_t i = 0; i < n; ++i) (*values)[i] = BitsOf(DecimalValue((*col)[i], k));
  return true;
}

// Adds `n` events of `each` bytes to *decoded; false past the limit.
bool Budget(size_t* decoded, uint64_t n, size_t each) {
  if (n > (kMaxBlockDecodedBytes - *decoded) / each) return false;
  *decoded += n * each;
  return true;
}

}  // namespace

Status DecodeBlock(std::string_view block, std::vector<StoredEvent>* out) {
  Header h;
  SLUICE_RETURN_IF_ERROR(ParseHeader(block, &h));
  if (h.size != block.size()) {
    return Corruption("block: " + Num(block.size()) + " bytes given, its header says " +
                      Num(h.size));
  }
  const std::string_view body = block.substr(h.header_end);
  if (Crc32c(body) != h.body_crc) return Corruption("block body checksum mismatch");
  BitReader r(body.data(), body.size());
  size_t dict_bytes = 0, decoded = 0;
  std::vector<std::string> names, units;
  SLUICE_RETURN_IF_ERROR(GetDict(&r, "sensor", h.count, &dict_bytes, &names));
  SLUICE_RETURN_IF_ERROR(GetDict(&r, "unit", h.count, &dict_bytes, &units));
  const uint64_t nseries = r.Ue();
  if (r.failed() || nseries > h.count) {
    return Corruption("block: bad series count " + Num(nseries));
  }
  std::vector<SeriesOut> series;
  std::vector<int64_t> col;
  uint64_t total = 0;
  size_t name = 0;
  int64_t seq_pred = 0, ts_pred = 0;
  for (uint64_t i = 0; i < nseries; ++i) {
    const std::string what = "block: series " + Num(i) + " ";
    SeriesOut s;
    name += r.Ue();
    s.name = name;
    s.unit = r.Ue();
    const uint64_t n = r.Ue() + 1;
    if (r.failed() || s.name >= names.size() || s.unit >= units.size() || n > h.count - total) {
      return Corruption(what + "header is damaged (sensor, unit or count out of range)");
    }
    const size_t each = EncodeReading(Reading{names[s.name], 0, 0, units[s.unit], {}}).size() +
                        names[s.name].size() + kPerEventOverhead;
    if (!Budget(&decoded, n, each)) {
      return Corruption(what + "decodes to more than " + Num(kMaxBlockDecodedBytes) + " bytes");
    }
    if (!GetSeqs(&r, h, n, &seq_pred, &col, &s.seqs)) {
      return Corruption(what + "seqs are damaged or outside the block's range");
    }
    if (!GetTimes(&r, h, n, &ts_pred, &col, &s.ts)) {
      return Corruption(what + "timestamps are damaged or outside the block's range");
    }
    if (r.Bits(1) == 1) {
      if (!block::GetInts(&r, n, 0, &s.quality)) return Corruption(what + "qualities damaged");
      for (int64_t q : s.quality) {
        if (q < 0 || q > static_cast<int64_t>(Quality::kBad)) {
          return Corruption(what + "has an unknown quality " + std::to_string(q));
        }
      }
    }
    if (!GetValues(&r, n, &col, &s.values)) return Corruption(what + "values are damaged");
    total += n;
    series.push_back(std::move(s));
  }
  const uint64_t nverbatim = r.Ue();
  if (r.failed() || nverbatim != h.count - total || nverbatim > r.remaining_bits() / 40) {
    return Corruption("block: the events do not add up to its count of " + Num(h.count));
  }
  std::vector<StoredEvent> verbatim(nverbatim);
  for (StoredEvent& e : verbatim) {
    const uint64_t seq_off = r.Varint();
    const uint64_t ts_off = r.Varint();
    const int64_t kind = r.SVarint();
    const uint64_t sensor_len = r.Varint();
    if (r.failed() || seq_off > h.last_seq - h.first_seq ||
        ts_off > static_cast<uint64_t>(Diff(h.max_ts, h.min_ts)) || kind < INT32_MIN ||
        kind > INT32_MAX || sensor_len > r.remaining_bits() / 8) {
      return Corruption("block: a verbatim event is damaged");
    }
    e.seq = h.first_seq + seq_off;
    e.ts_us = Sum(h.min_ts, static_cast<int64_t>(ts_off));
    e.kind = static_cast<int>(kind);
    r.Bytes(sensor_len, &e.sensor);
    const uint64_t body_len = r.Varint();
    if (r.failed() || body_len > r.remaining_bits() / 8 ||
        !Budget(&decoded, 1, body_len + sensor_len + kPerEventOverhead)) {
      return Corruption("block: a verbatim event's body is damaged");
    }
    r.Bytes(body_len, &e.body);
  }
  if (!r.AtCleanEnd()) return Corruption("block: damaged (data after the last event)");
  // Merge back into seq order: (seq, series index or ~0 for verbatim, i).
  struct At {
    uint64_t seq;
    uint32_t series, i;
  };
  std::vector<At> order;
  order.reserve(h.count);
  for (uint32_t s = 0; s < series.size(); ++s) {
    for (uint32_t i = 0; i < series[s].seqs.size(); ++i) order.push_back({series[s].seqs[i], s, i});
  }
  for (uint32_t i = 0; i < verbatim.size(); ++i) order.push_back({verbatim[i].seq, UINT32_MAX, i});
  std::sort(order.begin(), order.end(), [](const At& a, const At& b) { return a.seq < b.seq; });
  for (size_t i = 1; i < order.size(); ++i) {
    if (order[i].seq == order[i - 1].seq) {
      return Corruption("block: seq " + Num(order[i].seq) + " appears twice");
    }
  }
  if (!order.empty() && (order.front().seq != h.first_seq || order.back().seq != h.last_seq)) {
    return Corruption("block: its events do not span the seqs its header says");
  }
  std::vector<StoredEvent> events(order.size());
  for (size_t j = 0; j < order.size(); ++j) {
    const At& at = order[j];
    StoredEvent& e = events[j];
    if (at.series == UINT32_MAX) {
      e = std::move(verbatim[at.i]);
      continue;
    }
    const SeriesOut& s = series[at.series];
    Reading rd{names[s.name], s.ts[at.i], DoubleOf(s.values[at.i]), units[s.unit],
               s.quality.empty() ? Quality::kGood : static_cast<Quality>(s.quality[at.i])};
    e.seq = at.seq;
    e.ts_us = rd.ts_us;
    e.kind = static_cast<int>(EventKind::kReading);
    e.sensor = rd.sensor;
    e.body = EncodeReading(rd);
    SetEncodedSeq(&e.body, at.seq);
  }
  out->insert(out->end(), std::make_move_iterator(events.begin()),
              std::make_move_iterator(events.end()));
  return Status::Ok();
}

Status PeekBlock(std::string_view data, BlockInfo* info) {
  Header h;
  SLUICE_RETURN_IF_ERROR(ParseHeader(data, &h));
  info->count = h.count;
  info->first_seq = h.first_seq;
  info->last_seq = h.last_seq;
  info->min_ts_us = h.min_ts;
  info->max_ts_us = h.max_ts;
  info->bytes = h.size;
  return Status::Ok();
}

bool ResealBlockForTest(std::string* block) {
  Header h;
  if (!ParseHeader(*block, &h, false).ok() || h.header_end < kFixed + 4) return false;
  const std::string_view all(*block);
  const size_t end = std::min<uint64_t>(h.size, block->size());
  const uint32_t body_crc =
      Crc32c(end > h.header_end ? all.substr(h.header_end, end - h.header_end) : "");
  std::string crc;
  PutU32(&crc, body_crc);
  block->replace(h.header_end - 4, 4, crc);
  crc.clear();
  PutU32(&crc, Crc32c(std::string_view(*block).substr(kFixed, h.header_end - kFixed)));
  block->replace(4, 4, crc);
  return true;
}

}  // namespace sluice
