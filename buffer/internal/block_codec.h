// The block codec: a run of stored events (StoredEvent, seq order) packed
// into one compact, checksummed byte string and decoded back bit-exactly.
// The unit of the ring's sealed blocks and of compact MQTT batches.
//
// Format (version 1), all integers little-endian or varint:
//   header  "SLB" 0x01 | crc32c of the rest of the header (u32) |
//           varints: size (whole block), flags (0), count, first_seq,
//           last_seq - first_seq, zigzag min_ts_us, max_ts_us - min_ts_us |
//           crc32c of the body (u32)
//   body    one bit stream (MSB first): the sensor-name and unit
//           dictionaries (front-coded, sorted), then one series per
//           (sensor, unit) of readings that re-encode byte for byte (seq
//           deltas, timestamp deltas or delta-of-deltas, values as
//           decimal-scaled integer deltas or Gorilla XOR, qualities), then
//           every other event verbatim (seq, ts, kind, sensor, body).
// Decoding merges the series and the verbatim events back into seq order.
//
// Thread-safe (pure functions).
#pragma once

#include "buffer/internal/private.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "buffer/ring.h"
#include "common/status.h"

namespace sluice {

// Limits every block obeys: EncodeBlock refuses more (InvalidArgument),
// DecodeBlock calls a block that claims more corrupt before allocating.
constexpr size_t kMaxBlockEvents = 1u << 18;
// Bytes of sensor names and bodies a block decodes to (64 per event added).
constexpr size_t kMaxBlockDecodedBytes = 64u << 20;

struct BlockInfo {
  uint64_t count = 0;      // events in the block
  uint64_t first_seq = 0;  // 0 when empty
  uint64_t last_seq = 0;
  int64_t min_ts_us = 0;   // over every event; 0 when empty
  int64_t max_ts_us = 0;
  size_t bytes = 0;        // the whole block, header included
};

// Appends one block holding `events` to *out. REQUIRES nothing of the
// events but strictly increasing seq (gaps allowed): a reading whose body
// does not re-encode byte for byte from its fields (or whose seq, ts,
// sensor or kind disagree with its body) is stored verbatim, as are alerts.
// InvalidArgument (and *out unchanged) if seqs do not increase or the
// limits above are exceeded.
Status EncodeBlock(const std::vector<StoredEvent>& events, std::string* out);

// Appends the events of `block` (exactly one whole block) to *out in seq
// order, bodies byte for byte as given to EncodeBlock. Corruption naming
// what is wrong (checksum, truncation, a count or length out of bounds) for
// any damaged block; *out is then unchanged. Never trusts a length before
// checking it against the bytes present and the limits above.
Status DecodeBlock(std::string_view block, std::vector<StoredEvent>* out);

// Reads the header of the block that starts `data` (bytes after the block
// are allowed: a segment of blocks). Verifies the header's own checksum and
// that the whole block is present, not the body's checksum: O(header).
// Corruption if the header is damaged or the block truncated.
Status PeekBlock(std::string_view data, BlockInfo* info);

// CRC-32C (Castagnoli) of `data`, continuing from `crc` (0 to start).
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

// Tests and fuzzing only: recomputes both checksums of a block whose header
// parses, so that damage behind them reaches the decoder's bounds checks.
// False if the header does not parse.
bool ResealBlockForTest(std::string* block);

}  // namespace sluice
