// JSON building blocks, appending to a caller-owned buffer (no allocation
// beyond its growth). Thread-safe (pure functions).
#pragma once

#include <string>
#include <string_view>

namespace sluice {

// A quoted JSON string: ", \ and control characters escaped, valid UTF-8
// passed through, each byte of an invalid UTF-8 sequence replaced by U+FFFD.
void AppendJsonString(std::string_view s, std::string* out);
// Shortest round-trip decimal form of `v`; `null` if not finite.
void AppendJsonDouble(double v, std::string* out);

// The same, returned.
std::string JsonString(std::string_view s);
std::string JsonDouble(double v);

}  // namespace sluice
