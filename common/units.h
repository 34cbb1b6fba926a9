// Durations and sizes as written in config and rule files.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace sluice {

// "250ms", "5s", "10m", "2h", "1d" (also "us"); a non-negative integer
// followed by one unit. Returns microseconds.
StatusOr<int64_t> ParseDuration(const std::string& text);

// "512KiB", "256MiB", "1GiB", "100B", or "4096" (bytes); also KB/MB/GB
// (powers of 1000). Returns bytes.
StatusOr<uint64_t> ParseSize(const std::string& text);

// ISO 8601 UTC of a Unix-epoch microsecond timestamp:
// "2026-11-25T16:12:42Z", or with_millis "2026-11-25T16:12:42.913Z".
std::string FormatUtc(int64_t ts_us, bool with_millis);

// "1.5s", "250ms", "3m0s"-style compact rendering for logs.
std::string FormatDuration(int64_t us);

}  // namespace sluice
