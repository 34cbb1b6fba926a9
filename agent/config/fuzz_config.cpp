// libFuzzer target for the TOML guard and the config parser. Input: a TOML
// file. Checks: nothing crashes or overflows the stack; ParseConfig of any
// input returns (ok or an error naming the file); and whenever the guard
// passes a text that toml++ then accepts, the parsed tree is no deeper than
// the guard's limit (the prescan never under-counts). Built with
// -DSLUICE_FUZZ=ON and clang (agent/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/config/config.h"
#include "common/toml_guard.h"
#include "common/toml_parse.h"

using namespace sluice;

namespace {

// Depth of the deepest node below `root` (its direct children are depth 1).
// Iterative: the tree is only known to be shallow after this returns.
int TreeDepth(const toml::table& root) {
  int max = 0;
  std::vector<std::pair<const toml::node*, int>> todo;
  for (auto&& [k, v] : root) todo.emplace_back(&v, 1);
  while (!todo.empty()) {
    auto [n, d] = todo.back();
    todo.pop_back();
    if (d > max) max = d;
    if (const toml::table* t = n->as_table()) {
      for (auto&& [k, v] : *t) todo.emplace_back(&v, d + 1);
    } else if (const toml::array* a = n->as_array()) {
      for (const toml::node& e : *a) todo.emplace_back(&e, d + 1);
    }
  }
  return max;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  // A small limit, so the fuzzer reaches it with short inputs.
  TomlLimits small;
  small.max_depth = 6;
  small.max_bytes = 1u << 16;
  auto doc = ParseToml(text, "fuzz.toml", small);
  if (doc.ok() && TreeDepth(*doc) > small.max_depth) __builtin_trap();
  if (!doc.ok() && doc.status().message().rfind("fuzz.toml", 0) != 0) __builtin_trap();
  // The whole config path with the real limits.
  auto cfg = ParseConfig(text, "fuzz.toml");
  if (!cfg.ok() && cfg.status().message().rfind("fuzz.toml", 0) != 0) __builtin_trap();
  return 0;
}
