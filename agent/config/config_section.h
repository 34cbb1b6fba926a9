// Strict, typed access to the tables of sluiced's config file. Private to
// agent/config/config.cpp (split off to keep each file small); not a public header.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "common/toml_parse.h"

#include "common/units.h"

namespace sluice {
namespace config_detail {

// `us` in the largest unit that divides it evenly ("65535s", "10ms", "1h").
inline std::string ExactDuration(int64_t us) {
  static const std::pair<int64_t, const char*> kUnits[] = {
      {86400000000, "d"}, {3600000000, "h"}, {60000000, "m"}, {1000000, "s"}, {1000, "ms"}};
  for (const auto& [mult, unit] : kUnits) {
    if (us != 0 && us % mult == 0) return std::to_string(us / mult) + unit;
  }
  return std::to_string(us) + "us";
}

// `bytes` in the largest binary unit that divides it evenly ("64KiB").
inline std::string ExactSize(uint64_t bytes) {
  static const std::pair<uint64_t, const char*> kUnits[] = {
      {1ull << 40, "TiB"}, {1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"}};
  for (const auto& [mult, unit] : kUnits) {
    if (bytes != 0 && bytes % mult == 0) return std::to_string(bytes / mult) + unit;
  }
  return std::to_string(bytes) + "B";
}

inline std::string Where(const std::string& file, const toml::source_region& src) {
  std::string out = file;
  if (src.begin.line > 0) {
    out += ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
  }
  return out;
}

// Collects every error of one file, in order, each "FILE:LINE:COL: ...".
class Errors {
 public:
  explicit Errors(std::string file) : file_(std::move(file)) {}
  void Add(const toml::source_region& src, const std::string& what) {
    lines_.push_back(Where(file_, src) + ": " + what);
  }
  void AddNoPos(const std::string& what) { lines_.push_back(file_ + ": " + what); }
  bool empty() const { return lines_.empty(); }
  std::string Joined() const {
    std::string out;
    for (const auto& l : lines_) {
      if (!out.empty()) out += '\n';
      out += l;
    }
    return out;
  }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<std::string> lines_;
};

// Typed, strict access to one TOML table. Every key read is remembered;
// Finish() reports the keys nobody read as unknown.
class Section {
 public:
  Section(Errors& errors, const toml::table& table, std::string name)
      : errors_(errors), table_(table), name_(std::move(name)) {}

  const toml::node* Get(const std::string& key) {
    known_.insert(key);
    return table_.get(key);
  }

  bool String(const std::string& key, std::string* out, bool required = false) {
    const toml::node* n = Get(key);
    if (!n) {
      if (required) errors_.Add(table_.source(), name_ + ": missing required key \"" + key + "\"");
      return false;
    }
    if (auto v = n->value<std::string>(); v && n->is_string()) {
      *out = *v;
      return true;
    }
    Wrong(*n, key, "a string");
    return false;
  }

  bool Integer(const std::string& key, int64_t* out, int64_t min, int64_t max) {
    const toml::node* n = Get(key);
    if (!n) return false;
    if (!n->is_integer()) {
      Wrong(*n, key, "an integer");
      return false;
    }
    int64_t v = *n->value<int64_t>();
    if (v < min || v > max) {
      errors_.Add(n->source(), name_ + ": \"" + key + "\" must be between " +
                                   std::to_string(min) + " and " + std::to_string(max) +
                                   ", not " + std::to_string(v));
      return false;
    }
    *out = v;
    return true;
  }

  bool Bool(const std::string& key, bool* out) {
    const toml::node* n = Get(key);
    if (!n) return false;
    if (!n->is_boolean()) {
      Wrong(*n, key, "a boolean (true or false)");
      return false;
    }
    *out = *n->value<bool>();
    return true;
  }

  // A duration string in [min_us, max_us]; `why_max` (if any) says where
  // the upper limit comes from.
  bool Duration(const std::string& key, int64_t* out, int64_t min_us, int64_t max_us,
                const char* why_max = nullptr) {
    const toml::node* n = Get(key);
    if (!n) return false;
    if (!n->is_string()) {
      Wrong(*n, key, "a duration string such as \"5s\"");
      return false;
    }
    auto d = ParseDuration(*n->value<std::string>());
    if (!d.ok()) {
      errors_.Add(n->source(), name_ + ": \"" + key + "\": " + d.status().message());
      return false;
    }
    if (*d < min_us || *d > max_us) {
      errors_.Add(n->source(), name_ + ": \"" + key + "\" must be between " +
                                   ExactDuration(min_us) + " and " + ExactDuration(max_us) +
                                   (why_max ? std::string(" (") + why_max + ")" : "") +
                                   ", not " + *n->value<std::string>());
      return false;
    }
    *out = *d;
    return true;
  }

  // A size in [min, max]: a string with a unit ("256MiB") or an integer of
  // bytes.
  bool Size(const std::string& key, uint64_t* out, uint64_t min, uint64_t max) {
    const toml::node* n = Get(key);
    if (!n) return false;
    if (n->is_integer() && *n->value<int64_t>() > 0) {
      return SizeInRange(*n, key, static_cast<uint64_t>(*n->value<int64_t>()), min, max, out);
    }
    if (!n->is_string()) {
      Wrong(*n, key, "a size such as \"256MiB\"");
      return false;
    }
    auto s = ParseSize(*n->value<std::string>());
    if (!s.ok() || *s == 0) {
      errors_.Add(n->source(), name_ + ": \"" + key + "\": " +
                                   (s.ok() ? std::string("must be positive") : s.status().message()));
      return false;
    }
    return SizeInRange(*n, key, *s, min, max, out);
  }

  bool StringList(const std::string& key, std::vector<std::string>* out) {
    const toml::node* n = Get(key);
    if (!n) return false;
    const toml::array* a = n->as_array();
    if (!a) {
      Wrong(*n, key, "an array of strings");
      return false;
    }
    out->clear();
    for (const toml::node& e : *a) {
      if (!e.is_string()) {
        errors_.Add(e.source(), name_ + ": \"" + key + "\" must hold only strings, not " +
                                    TomlTypeName(e));
        return false;
      }
      out->push_back(*e.value<std::string>());
    }
    return true;
  }

  const toml::table* Table(const std::string& key) {
    const toml::node* n = Get(key);
    if (!n) return nullptr;
    if (!n->is_table()) {
      Wrong(*n, key, "a table");
      return nullptr;
    }
    return n->as_table();
  }

  // Reports every key that no getter asked for.
  void Finish() {
    for (auto&& [k, v] : table_) {
      std::string key(k.str());
      if (!known_.count(key)) {
        errors_.Add(k.source(), name_ + ": unknown key \"" + key + "\"");
      }
    }
  }

  void Error(const toml::node& n, const std::string& what) {
    errors_.Add(n.source(), name_ + ": " + what);
  }
  void ErrorAtKey(const std::string& key, const std::string& what) {
    const toml::node* n = table_.get(key);
    errors_.Add(n ? n->source() : table_.source(), name_ + ": " + what);
  }

 private:
  bool SizeInRange(const toml::node& n, const std::string& key, uint64_t v, uint64_t min,
                   uint64_t max, uint64_t* out) {
    if (v < min || v > max) {
      errors_.Add(n.source(), name_ + ": \"" + key + "\" must be between " + ExactSize(min) +
                                  " and " + ExactSize(max) + ", not " + ExactSize(v));
      return false;
    }
    *out = v;
    return true;
  }

  void Wrong(const toml::node& n, const std::string& key, const char* expected) {
    errors_.Add(n.source(), name_ + ": \"" + key + "\" must be " + expected + ", not " +
                                TomlTypeName(n));
  }

  Errors& errors_;
  const toml::table& table_;
  std::string name_;
  std::set<std::string> known_;
};

}  // namespace config_detail
}  // namespace sluice
