// The push line protocol (CONTRACT.md "Push line protocol"):
//   SENSOR VALUE [TS_US]
// fields separated by spaces or tabs; SENSOR matches [A-Za-z0-9._-]{1,128};
// VALUE is a finite number (strtod syntax, the whole token); TS_US, when
// present, is a non-negative integer of microseconds since the Unix epoch.
// A trailing '\r' is tolerated. Blank lines are not readings and are skipped
// (neither good nor bad). Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice {

// Lines longer than this (without the newline) are bad.
constexpr size_t kMaxLineBytes = 4096;
constexpr size_t kMaxSensorNameBytes = 128;

struct ParsedLine {
  std::string sensor;
  double value = 0;
  bool has_ts = false;
  int64_t ts_us = 0;
};

// True if `name` matches [A-Za-z0-9._-]{1,128}.
bool ValidSensorName(std::string_view name);

// True if `line` holds only spaces, tabs and a trailing '\r'.
bool BlankLine(std::string_view line);

// Parses one line (without its '\n'). Returns InvalidArgument saying what is
// wrong for a bad line. REQUIRES: !BlankLine(line) for a meaningful message.
Status ParseLine(std::string_view line, ParsedLine* out);

// Splits a datagram into lines: one or more '\n'-terminated lines; a final
// line without '\n' counts as a line. Blank lines are left out.
std::vector<std::string_view> SplitDatagram(std::string_view datagram);

}  // namespace sluice
