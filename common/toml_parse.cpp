#include "common/toml_parse.h"

namespace sluice {

StatusOr<toml::table> ParseToml(std::string_view text, const std::string& path,
                                const TomlLimits& limits) {
  SLUICE_RETURN_IF_ERROR(PrescanToml(text, path, limits));
  try {
    return toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    std::string where = path;
    const toml::source_region& src = e.source();
    if (src.begin.line > 0) {
      where += ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
    }
    return InvalidArgument(where + ": " + std::string(e.description()));
  }
}

const char* TomlTypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    default: return "a date/time";
  }
}

}  // namespace sluice
