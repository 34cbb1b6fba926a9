// Maps byte offsets inside a decoded TOML string value back to LINE:COL in
// the file, so expression errors point at the character at fault.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sluice {
namespace rules {

struct SourcePos {
  int line = 0;
  int column = 0;  // 1-based, in code points (as toml++ counts)
};

// `line`/`column`: where toml++ says the string value starts (its opening
// quote). Re-reads the raw string from `file_text` (basic, literal and
// multi-line strings, escapes, line-ending backslashes) and returns one
// position per byte of `decoded` plus one for the closing quote. Escapes map
// to their backslash. Returns an empty vector if the raw text does not
// decode to `decoded` (then callers fall back to column + 1 + offset).
std::vector<SourcePos> MapStringSource(const std::string& file_text, int line, int column,
                                       const std::string& decoded);

}  // namespace rules
}  // namespace sluice
