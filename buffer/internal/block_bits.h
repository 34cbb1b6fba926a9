// Bit streams and column encodings of the block codec (block_codec.h).
// BitReader never reads past its end: a read beyond it returns 0 and sets a
// sticky failure the caller checks (failed()) before trusting anything read.
#pragma once

#include "buffer/internal/private.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice {
namespace block {

inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ (v < 0 ? ~uint64_t{0} : 0);
}
inline int64_t UnZigZag(uint64_t z) {
  return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
}
// Wrapping difference and sum: any int64 sequence round-trips exactly.
inline int64_t Diff(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
inline int64_t Sum(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

class BitWriter {
 public:
  void Bits(uint64_t v, int n);  // the low n bits of v, 0 <= n <= 64
  void Varint(uint64_t v);       // 7-bit groups, continuation bit first
  void SVarint(int64_t v) { Varint(ZigZag(v)); }
  void Ue(uint64_t v);           // exp-Golomb, REQUIRES v < 2^32
  void Bytes(const std::string& s);
  void Append(const BitWriter& other);
  size_t bits() const { return bytes_.size() * 8 + static_cast<size_t>(nacc_); }
  // The stream padded with zero bits to whole bytes.
  std::string Finish() const;

 private:
  std::string bytes_;
  uint64_t acc_ = 0;  // pending bits, right-aligned
  int nacc_ = 0;      // < 8 between calls
};

class BitReader {
 public:
  BitReader(const char* data, size_t size) : data_(data), size_bits_(size * 8) {}
  uint64_t Bits(int n);
  uint64_t Varint();
  int64_t SVarint() { return UnZigZag(Varint()); }
  uint64_t Ue();  // fails on more than 32 leading zeros
  // Reads n bytes into *s; fails (without allocating) if fewer remain.
  void Bytes(size_t n, std::string* s);
  bool failed() const { return failed_; }
  void Fail() { failed_ = true; }
  size_t remaining_bits() const { return failed_ ? 0 : size_bits_ - pos_; }
  // True at the end of the stream with only zero padding bits left.
  bool AtCleanEnd();

 private:
  const char* data_;
  size_t size_bits_;
  size_t pos_ = 0;
  bool failed_ = false;
};

// A column of n int64s (n known to both sides): the smallest of
// frame-of-reference bit packing of the values, of their differences (the
// first value apart), or zigzag varints. The first number each form stores
// (the frame's minimum or the first value) is stored relative to
// `predicted`, which the reader passes too: the previous series' MinOf of
// the same column, so that similar series cost little.
void PutInts(const std::vector<int64_t>& v, int64_t predicted, BitWriter* w);
// Reads n values into *v (replacing it). False on a damaged stream.
bool GetInts(BitReader* r, size_t n, int64_t predicted, std::vector<int64_t>* v);
// The smallest of v (0 when empty): the next series' prediction.
int64_t MinOf(const std::vector<int64_t>& v);

// Gorilla XOR of doubles' bit patterns (the first one raw).
void PutXor(const std::vector<uint64_t>& bits, BitWriter* w);
bool GetXor(BitReader* r, size_t n, std::vector<uint64_t>* bits);

}  // namespace block
}  // namespace sluice
