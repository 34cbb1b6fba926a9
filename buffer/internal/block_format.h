// The block codec's format pieces shared by its encoder (block_codec.cpp)
// and decoder (block_decode.cpp): the header, the dictionaries, decimal
// scaling. The layout is described in block_codec.h.
#pragma once

#include "buffer/internal/private.h"

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "buffer/internal/block_bits.h"
#include "common/status.h"

namespace sluice {
namespace block {

constexpr char kMagic[3] = {'S', 'L', 'B'};
constexpr uint8_t kVersion = 1;
constexpr size_t kFixed = 8;           // magic, version, header crc
constexpr size_t kMaxHeaderRest = 80;  // 7 varints + crc
// Counted per event against kMaxBlockDecodedBytes, beside body and sensor.
constexpr size_t kPerEventOverhead = 64;
constexpr int kMaxDecimals = 6;
constexpr double kPow10[kMaxDecimals + 1] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};

inline std::string Num(uint64_t v) { return std::to_string(v); }

inline uint64_t BitsOf(double v) {
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}
inline double DoubleOf(uint64_t u) {
  double v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

// The one place a decimal-scaled value becomes a double: the encoder's
// bit-exact check and the decoder use it alike.
inline double DecimalValue(int64_t n, int k) { return static_cast<double>(n) / kPow10[k]; }

// Big-endian u32 (the checksums).
void PutU32(std::string* s, uint32_t v);
uint32_t GetU32(const char* p);

struct Header {
  uint64_t size = 0, flags = 0, count = 0, first_seq = 0, last_seq = 0;
  int64_t min_ts = 0, max_ts = 0;
  uint32_t body_crc = 0;
  size_t header_end = 0;  // offset of the body
};

// The header after the fixed 8 bytes, for a block of `size` bytes.
std::string HeaderRest(const Header& h, uint64_t size);

// Parses and checks the header of the block starting `d` (more bytes may
// follow it): Corruption naming what is wrong. Every field is checked
// before anything trusts it. Without `verify`, only parses (magic,
// version, fields up to header_end).
Status ParseHeader(std::string_view d, Header* h, bool verify = true);

// Sorted strings, each as (bytes shared with the previous, suffix).
void PutDict(const std::vector<std::string>& dict, BitWriter* w);
// At most max_entries entries, *decoded_bytes (their total size so far)
// kept under kMaxBlockDecodedBytes.
Status GetDict(BitReader* r, const char* what, uint64_t max_entries, size_t* decoded_bytes,
               std::vector<std::string>* dict);

}  // namespace block
}  // namespace sluice
