#include "buffer/internal/block_format.h"

#include <algorithm>

#include "buffer/internal/block_codec.h"

namespace sluice {
namespace block {

void PutU32(std::string* s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s->push_back(static_cast<char>(v >> shift));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void PutDict(const std::vector<std::string>& dict, BitWriter* w) {
  w->Ue(dict.size());
  const std::string* prev = nullptr;
  for (const std::string& s : dict) {
    size_t shared = 0;
    if (prev != nullptr) {
      while (shared < prev->size() && shared < s.size() && (*prev)[shared] == s[shared]) ++shared;
    }
    w->Varint(shared);
    w->Varint(s.size() - shared);
    w->Bytes(s.substr(shared));
    prev = &s;
  }
}

Status GetDict(BitReader* r, const char* what, uint64_t max_entries, size_t* decoded_bytes,
               std::vector<std::string>* dict) {
  const uint64_t n = r->Ue();
  if (r->failed() || n > max_entries || n > r->remaining_bits() / 16) {
    return Corruption(std::string("block: ") + what + " dictionary: bad entry count " + Num(n));
  }
  dict->resize(n);
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t shared = r->Varint();
    const uint64_t suffix = r->Varint();
    const size_t prev = i == 0 ? 0 : (*dict)[i - 1].size();
    if (r->failed() || shared > prev || suffix > r->remaining_bits() / 8 ||
        shared + suffix > kMaxBlockDecodedBytes - *decoded_bytes) {
      return Corruption(std::string("block: ") + what + " dictionary entry " + Num(i) +
                        " is damaged");
    }
    std::string tail;
    r->Bytes(suffix, &tail);
    (*dict)[i] = (i == 0 ? std::string() : (*dict)[i - 1].substr(0, shared)) + tail;
    *decoded_bytes += (*dict)[i].size();
  }
  return Status::Ok();
}

std::string HeaderRest(const Header& h, uint64_t size) {
  BitWriter w;
  w.Varint(size);
  w.Varint(h.flags);
  w.Varint(h.count);
  w.Varint(h.first_seq);
  w.Varint(h.last_seq - h.first_seq);
  w.SVarint(h.min_ts);
  w.Varint(static_cast<uint64_t>(Diff(h.max_ts, h.min_ts)));
  w.Bits(h.body_crc, 32);
  return w.Finish();
}

Status ParseHeader(std::string_view d, Header* h, bool verify) {
  if (d.size() < 4 || std::memcmp(d.data(), kMagic, 3) != 0) {
    return Corruption(d.size() < 4 ? "block truncated: " + Num(d.size()) + " bytes"
                                   : std::string("not a block (bad magic)"));
  }
  if (static_cast<uint8_t>(d[3]) != kVersion) {
    return Corruption("block format version " + Num(static_cast<uint8_t>(d[3])) +
                      " is not supported (this build reads version 1)");
  }
  if (d.size() < kFixed) return Corruption("block truncated in its header");
  const size_t avail = std::min(d.size() - kFixed, kMaxHeaderRest);
  BitReader r(d.data() + kFixed, avail);
  h->size = r.Varint();
  h->flags = r.Varint();
  h->count = r.Varint();
  h->first_seq = r.Varint();
  const uint64_t seq_span = r.Varint();
  h->min_ts = r.SVarint();
  const uint64_t ts_span = r.Varint();
  h->body_crc = static_cast<uint32_t>(r.Bits(32));
  if (r.failed()) return Corruption("block truncated or damaged in its header");
  h->header_end = kFixed + (avail * 8 - r.remaining_bits()) / 8;
  if (!verify) return Status::Ok();
  const uint32_t stored = GetU32(d.data() + 4);
  const uint32_t computed = Crc32c(d.substr(kFixed, h->header_end - kFixed));
  if (stored != computed) return Corruption("block header checksum mismatch");
  if (h->flags != 0) return Corruption("block has unknown flags " + Num(h->flags));
  if (h->count > kMaxBlockEvents) {
    return Corruption("block claims " + Num(h->count) + " events, more than " +
                      Num(kMaxBlockEvents));
  }
  if (h->size < h->header_end) return Corruption("block size smaller than its header");
  if (h->size > d.size()) {
    return Corruption("block truncated: " + Num(d.size()) + " of " + Num(h->size) +
                      " bytes present");
  }
  h->last_seq = h->first_seq + seq_span;
  h->max_ts = Sum(h->min_ts, static_cast<int64_t>(ts_span));
  const bool empty_ok = seq_span == 0 && h->first_seq == 0 && ts_span == 0 && h->min_ts == 0;
  if ((h->count == 0 && !empty_ok) ||
      (h->count > 0 && (h->last_seq < h->first_seq || seq_span < h->count - 1 ||
                        h->max_ts < h->min_ts))) {
    return Corruption("block header is inconsistent (count, seq or time range)");
  }
  return Status::Ok();
}

}  // namespace block
}  // namespace sluice
