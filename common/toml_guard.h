// The guard in front of every TOML parse (config, rule files, board files).
// toml++ recurses once per level of nesting and per segment of a dotted key
// or table header, so a small file (`[x.x.x…]` with 50,000 segments, 100 KB)
// overflows the stack. PrescanToml bounds the size and the nesting depth with
// a cheap lexical scan before toml++ sees the text; ParseToml (toml_parse.h)
// is the only place that calls toml::parse.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice {

struct TomlLimits {
  // Far above any real config or rule file (a 1,000-rule file is ~100 KB).
  size_t max_bytes = 4u << 20;
  // Levels of table-header segments, dotted-key segments, arrays and inline
  // tables, counted together along one path. Real files use fewer than 10.
  int max_depth = 64;
};

// Returns OK, or InvalidArgument "PATH:LINE:COL: nested too deep (...)" at
// the first segment or bracket past the limit, or "PATH:LINE:COL: too long
// (...)" at the first byte past max_bytes. Strings (all four kinds) and
// comments are skipped. Text that is not valid TOML may pass: toml++
// reports its syntax errors afterwards. Linear in the size, no recursion.
Status PrescanToml(std::string_view text, const std::string& path,
                   const TomlLimits& limits = TomlLimits());

}  // namespace sluice
