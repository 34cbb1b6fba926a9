#include "buffer/internal/block_bits.h"

#include <algorithm>
#include <array>

#include "buffer/internal/block_codec.h"

namespace sluice {

uint32_t Crc32c(std::string_view data, uint32_t crc) {
  // Reflected Castagnoli polynomial, one table lookup per byte.
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (char ch : data) crc = kTable[(crc ^ static_cast<uint8_t>(ch)) & 0xff] ^ (crc >> 8);
  return ~crc;
}

namespace block {
namespace {

// Bits needed for u (0 for 0).
int Width(uint64_t u) { return u == 0 ? 0 : 64 - __builtin_clzll(u); }

size_t VarintBits(uint64_t u) {
  size_t groups = 1;
  while (u >= 0x80) {
    u >>= 7;
    ++groups;
  }
  return groups * 8;
}

enum Mode : uint64_t { kFrame = 0, kFrameOfDiffs = 1, kVarints = 2 };
constexpr int kModeBits = 2;
constexpr int kWidthBits = 7;

}  // namespace

void BitWriter::Bits(uint64_t v, int n) {
  while (n > 0) {
    const int take = std::min(n, 8 - nacc_);
    const uint64_t chunk = (v >> (n - take)) & ((uint64_t{1} << take) - 1);
    acc_ = (acc_ << take) | chunk;
    nacc_ += take;
    n -= take;
    if (nacc_ == 8) {
      bytes_.push_back(static_cast<char>(acc_));
      acc_ = 0;
      nacc_ = 0;
    }
  }
}

void BitWriter::Varint(uint64_t v) {
  while (v >= 0x80) {
    Bits((v & 0x7f) | 0x80, 8);
    v >>= 7;
  }
  Bits(v, 8);
}

void BitWriter::Ue(uint64_t v) {
  const uint64_t x = v + 1;
  const int n = Width(x);
  Bits(0, n - 1);
  Bits(x, n);
}

void BitWriter::Bytes(const std::string& s) {
  for (char c : s) Bits(static_cast<uint8_t>(c), 8);
}

void BitWriter::Append(const BitWriter& other) {
  if (nacc_ == 0) {
    bytes_ += other.bytes_;
  } else {
    for (char c : other.bytes_) Bits(static_cast<uint8_t>(c), 8);
  }
  Bits(other.acc_, other.nacc_);
}

std::string BitWriter::Finish() const {
  std::string out = bytes_;
  if (nacc_ > 0) out.push_back(static_cast<char>(acc_ << (8 - nacc_)));
  return out;
}

uint64_t BitReader::Bits(int n) {
  if (failed_ || static_cast<size_t>(n) > size_bits_ - pos_) {
    failed_ = true;
    return 0;
  }
  uint64_t v = 0;
  while (n > 0) {
    const int off = static_cast<int>(pos_ & 7);
    const int avail = 8 - off;
    const int take = std::min(n, avail);
    const uint64_t b = static_cast<uint8_t>(data_[pos_ >> 3]);
    v = (v << take) | ((b >> (avail - take)) & ((uint64_t{1} << take) - 1));
    pos_ += static_cast<size_t>(take);
    n -= take;
  }
  return v;
}

uint64_t BitReader::Varint() {
  uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    const uint64_t b = Bits(8);
    if (failed_) return 0;
    v |= (b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      if (i == 9 && b > 1) break;  // more than 64 bits
      return v;
    }
  }
  failed_ = true;
  return 0;
}

uint64_t BitReader::Ue() {
  int zeros = 0;
  while (Bits(1) == 0) {
    if (failed_ || ++zeros > 32) {
      failed_ = true;
      return 0;
    }
  }
  const uint64_t rest = Bits(zeros);
  return ((uint64_t{1} << zeros) | rest) - 1;
}

void BitReader::Bytes(size_t n, std::string* s) {
  if (n > remaining_bits() / 8) {
    failed_ = true;
    return;
  }
  s->resize(n);
  if ((pos_ & 7) == 0) {
    std::copy(data_ + (pos_ >> 3), data_ + (pos_ >> 3) + n, s->begin());
    pos_ += n * 8;
    return;
  }
  for (size_t i = 0; i < n; ++i) (*s)[i] = static_cast<char>(Bits(8));
}

bool BitReader::AtCleanEnd() {
  const size_t left = remaining_bits();
  return !failed_ && left < 8 && Bits(static_cast<int>(left)) == 0 && !failed_;
}

int64_t MinOf(const std::vector<int64_t>& v) {
  return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}

void PutInts(const std::vector<int64_t>& v, int64_t predicted, BitWriter* w) {
  const size_t n = v.size();
  if (n == 0) return;
  // Frame of the values.
  const int64_t min = MinOf(v);
  uint64_t span = 0;
  for (int64_t x : v) span = std::max(span, static_cast<uint64_t>(Diff(x, min)));
  const int width = Width(span);
  const size_t frame_bits = VarintBits(ZigZag(Diff(min, predicted))) + kWidthBits + n * width;
  // Frame of the differences.
  std::vector<int64_t> d;
  d.reserve(n);
  for (size_t i = 1; i < n; ++i) d.push_back(Diff(v[i], v[i - 1]));
  const int64_t dmin = MinOf(d);
  uint64_t dspan = 0;
  for (int64_t x : d) dspan = std::max(dspan, static_cast<uint64_t>(Diff(x, dmin)));
  const int dwidth = Width(dspan);
  const size_t diff_bits = VarintBits(ZigZag(Diff(v[0], predicted))) +
                           VarintBits(ZigZag(dmin)) + kWidthBits + (n - 1) * dwidth;
  // Varints.
  size_t varint_bits = 0;
  for (int64_t x : v) varint_bits += VarintBits(ZigZag(Diff(x, predicted)));

  if (frame_bits <= diff_bits && frame_bits <= varint_bits) {
    w->Bits(kFrame, kModeBits);
    w->Bits(static_cast<uint64_t>(width), kWidthBits);
    w->SVarint(Diff(min, predicted));
    for (int64_t x : v) w->Bits(static_cast<uint64_t>(Diff(x, min)), width);
  } else if (diff_bits <= varint_bits) {
    w->Bits(kFrameOfDiffs, kModeBits);
    w->SVarint(Diff(v[0], predicted));
    w->SVarint(dmin);
    w->Bits(static_cast<uint64_t>(dwidth), kWidthBits);
    for (int64_t x : d) w->Bits(static_cast<uint64_t>(Diff(x, dmin)), dwidth);
  } else {
    w->Bits(kVarints, kModeBits);
    for (int64_t x : v) w->SVarint(Diff(x, predicted));
  }
}

bool GetInts(BitReader* r, size_t n, int64_t predicted, std::vector<int64_t>* v) {
  v->clear();
  if (n == 0) return true;
  const uint64_t mode = r->Bits(kModeBits);
  if (mode == kFrame) {
    const int width = static_cast<int>(r->Bits(kWidthBits));
    const int64_t min = Sum(r->SVarint(), predicted);
    if (r->failed() || width > 64 || n * static_cast<size_t>(width) > r->remaining_bits()) {
      return false;
    }
    v->resize(n);
    for (size_t i = 0; i < n; ++i) (*v)[i] = Sum(min, static_cast<int64_t>(r->Bits(width)));
  } else if (mode == kFrameOfDiffs) {
    const int64_t first = Sum(r->SVarint(), predicted);
    const int64_t dmin = r->SVarint();
    const int width = static_cast<int>(r->Bits(kWidthBits));
    if (r->failed() || width > 64 ||
        (n - 1) * static_cast<size_t>(width) > r->remaining_bits()) {
      return false;
    }
    v->resize(n);
    (*v)[0] = first;
    for (size_t i = 1; i < n; ++i) {
      (*v)[i] = Sum((*v)[i - 1], Sum(dmin, static_cast<int64_t>(r->Bits(width))));
    }
  } else if (mode == kVarints) {
    if (r->failed() || n > r->remaining_bits() / 8) return false;
    v->resize(n);
    for (size_t i = 0; i < n; ++i) (*v)[i] = Sum(r->SVarint(), predicted);
  } else {
    return false;
  }
  return !r->failed();
}

// Gorilla: per value after the first, '0' (same bits), '10' + the
// meaningful bits inside the previous window, or '11' + 5 bits of leading
// zeros + 6 bits of length - 1 + the meaningful bits.
void PutXor(const std::vector<uint64_t>& bits, BitWriter* w) {
  if (bits.empty()) return;
  w->Bits(bits[0], 64);
  int lead = -1, trail = 0;  // the window; lead -1: none yet
  for (size_t i = 1; i < bits.size(); ++i) {
    const uint64_t x = bits[i] ^ bits[i - 1];
    if (x == 0) {
      w->Bits(0, 1);
      continue;
    }
    const int l = std::min(__builtin_clzll(x), 31);
    const int t = __builtin_ctzll(x);
    if (lead >= 0 && l >= lead && t >= trail) {
      w->Bits(0b10, 2);
      w->Bits(x >> trail, 64 - lead - trail);
      continue;
    }
    lead = l;
    trail = t;
    const int len = 64 - lead - trail;
    w->Bits(0b11, 2);
    w->Bits(static_cast<uint64_t>(lead), 5);
    w->Bits(static_cast<uint64_t>(len - 1), 6);
    w->Bits(x >> trail, len);
  }
}

bool GetXor(BitReader* r, size_t n, std::vector<uint64_t>* bits) {
  bits->clear();
  if (n == 0) return true;
  const uint64_t first = r->Bits(64);
  if (r->failed() || n - 1 > r->remaining_bits()) return false;
  bits->resize(n);
  (*bits)[0] = first;
  int lead = -1, trail = 0;
  for (size_t i = 1; i < n; ++i) {
    uint64_t x = 0;
    if (r->Bits(1) == 1) {
      if (r->Bits(1) == 1) {
        lead = static_cast<int>(r->Bits(5));
        const int len = static_cast<int>(r->Bits(6)) + 1;
        if (lead + len > 64) return false;
        trail = 64 - lead - len;
      } else if (lead < 0) {
        return false;  // a window before any was set
      }
      x = r->Bits(64 - lead - trail) << trail;
    }
    if (r->failed()) return false;
    (*bits)[i] = (*bits)[i - 1] ^ x;
  }
  return true;
}

}  // namespace block
}  // namespace sluice
