// `sluice-bench wear`'s block codec figure: what the block codec
// (buffer/internal/block_codec.h) alone stores for the at-rest readings,
// encoded in-process, beside what today's ring stores for them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace sluice {
namespace bench {

// Bytes per reading of n readings encoded in blocks of `per_block`, the
// readings given as push lines ("SENSOR VALUE TS_US\n", as the push driver
// reads them) by lines(first, count), with seqs 1..n as the ring assigns
// them. -1 if a block fails to encode or to decode back byte for byte.
double BlockBytesPerReading(const std::function<std::string(uint64_t, uint64_t)>& lines,
                            uint64_t n, size_t per_block);

}  // namespace bench
}  // namespace sluice
