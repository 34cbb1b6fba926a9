// Numbers in the text that devices and programs produce (command output,
// serial lines, MQTT payloads). Locale-independent. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice {

// `text` without leading and trailing spaces, tabs, CR and LF.
std::string_view TrimSpace(std::string_view text);

// A decimal number ("21.5", "-3", "+1e3", "0.25"), optionally surrounded by
// whitespace, and nothing else. Rejects NaN, infinities, hex, empty text and
// trailing garbage with kInvalidArgument "not a number: \"...\"".
StatusOr<double> ParsePlainNumber(std::string_view text);

// `text` for an error message: control characters and invalid UTF-8 bytes
// replaced by '?', cut to at most `max` bytes on a character boundary (with
// "..." when cut).
std::string Snippet(std::string_view text, size_t max = 60);

}  // namespace sluice
