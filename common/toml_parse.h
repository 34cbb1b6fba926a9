// The one entry to toml++ for every TOML file Sluice reads (config, rule
// files, board files): PrescanToml (toml_guard.h) first, then toml::parse.
// Nothing else calls toml::parse on text from outside.
#pragma once

#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "common/status.h"
#include "common/toml_guard.h"

namespace sluice {

// Parses `text` (named `path` in errors and in the nodes' source regions).
// Errors: InvalidArgument "PATH:LINE:COL: what" — the guard's "nested too
// deep" / "too long", or toml++'s syntax error.
StatusOr<toml::table> ParseToml(std::string_view text, const std::string& path,
                                const TomlLimits& limits = TomlLimits());

// "a string", "an integer", ... for "must be X, not Y" messages.
const char* TomlTypeName(const toml::node& n);

}  // namespace sluice
