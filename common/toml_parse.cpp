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

}  // namespace sluice
