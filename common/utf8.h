// UTF-8 and hex helpers shared by the JSON writer and reader and the rules
// source map. Thread-safe (pure functions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

// Length of the valid UTF-8 sequence at s[i] (1 for ASCII), or 0 if invalid:
// truncated, overlong forms, surrogates and code points past U+10FFFF.
// REQUIRES: i < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

// Appends code point `cp` (<= U+10FFFF, not a surrogate) encoded as UTF-8.
void AppendUtf8(uint32_t cp, std::string* out);

// 0-15 for a hex digit (either case), -1 otherwise.
int HexDigitValue(char c);

}  // namespace sluice
