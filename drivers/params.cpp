#include "drivers/params.h"

#include <cmath>
#include <utility>

#include "common/units.h"

namespace sluice {
namespace {

const char* TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

}  // namespace

Params::Params(std::string file, std::string sensor, const toml::table* table,
               int line, int column)
    : file_(std::move(file)),
      sensor_(std::move(sensor)),
      table_(table),
      line_(line),
      column_(column) {}

const toml::node* Params::Get(const std::string& key) {
  used_.insert(key);
  if (table_ == nullptr) return nullptr;
  return table_->get(key);
}

bool Params::Has(const std::string& key) const {
  return table_ != nullptr && table_->get(key) != nullptr;
}

std::string Params::Where(const toml::node* node) const {
  int line = line_;
  int column = column_;
  if (node != nullptr && node->source().begin.line > 0) {
    line = static_cast<int>(node->source().begin.line);
    column = static_cast<int>(node->source().begin.column);
  }
  std::string out = file_;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  return out;
}

Status Params::ErrorAt(const std::string& key, const std::string& what) const {
  const toml::node* node = table_ != nullptr ? table_->get(key) : nullptr;
  return InvalidArgument(Where(node) + ": sensor \"" + sensor_ + "\": param \"" +
                         key + "\" " + what);
}

Status Params::SensorError(const std::string& what) const {
  return InvalidArgument(Where(nullptr) + ": sensor \"" + sensor_ + "\": " + what);
}

StatusOr<double> Params::Number(const std::string& key, double def) {
  const toml::node* n = Get(key);
  if (n == nullptr) return def;
  if (!n->is_number()) {
    return ErrorAt(key, std::string("must be a number, not ") + TypeName(*n));
  }
  double v = n->value<double>().value_or(0.0);
  if (!std::isfinite(v)) return ErrorAt(key, "must be a finite number");
  return v;
}

StatusOr<int64_t> Params::Integer(const std::string& key, int64_t def) {
  const toml::node* n = Get(key);
  if (n == nullptr) return def;
  if (!n->is_integer()) {
    return ErrorAt(key, std::string("must be an integer, not ") + TypeName(*n));
  }
  return n->as_integer()->get();
}

StatusOr<bool> Params::Bool(const std::string& key, bool def) {
  const toml::node* n = Get(key);
  if (n == nullptr) return def;
  if (!n->is_boolean()) {
    return ErrorAt(key, std::string("must be a boolean, not ") + TypeName(*n));
  }
  return n->as_boolean()->get();
}

StatusOr<std::string> Params::String(const std::string& key, const std::string& def) {
  const toml::node* n = Get(key);
  if (n == nullptr) return def;
  if (!n->is_string()) {
    return ErrorAt(key, std::string("must be a string, not ") + TypeName(*n));
  }
  return n->as_string()->get();
}

StatusOr<std::string> Params::RequiredString(const std::string& key) {
  const toml::node* n = Get(key);
  if (n == nullptr) {
    return SensorError("param \"" + key + "\" is required for driver \"" + driver_ + "\"");
  }
  return String(key, "");
}

StatusOr<int64_t> Params::Duration(const std::string& key, int64_t def_us) {
  const toml::node* n = Get(key);
  if (n == nullptr) return def_us;
  if (!n->is_string()) {
    return ErrorAt(key, std::string("must be a duration such as \"10s\", not ") +
                            TypeName(*n));
  }
  StatusOr<int64_t> d = ParseDuration(n->as_string()->get());
  if (!d.ok()) return ErrorAt(key, "must be a duration: " + d.status().message());
  return *d;
}

StatusOr<std::vector<std::string>> Params::StringList(const std::string& key) {
  const toml::node* n = Get(key);
  std::vector<std::string> out;
  if (n == nullptr) return out;
  const toml::array* arr = n->as_array();
  if (arr == nullptr) {
    return ErrorAt(key, std::string("must be a list of strings, not ") + TypeName(*n));
  }
  for (const toml::node& el : *arr) {
    if (!el.is_string()) {
      return ErrorAt(key, std::string("must be a list of strings (found ") +
                              TypeName(el) + ")");
    }
    out.push_back(el.as_string()->get());
  }
  return out;
}

Status Params::CheckAllUsed() const {
  if (table_ == nullptr) return Status::Ok();
  // Report the unused key that comes first in the file (keys iterate sorted).
  const toml::source_position* first = nullptr;
  std::string first_key;
  for (const auto& [k, v] : *table_) {
    (void)v;
    std::string key(k.str());
    if (used_.count(key) != 0) continue;
    const toml::source_position& p = k.source().begin;
    if (first == nullptr || p.line < first->line ||
        (p.line == first->line && p.column < first->column)) {
      first = &p;
      first_key = key;
    }
  }
  if (first == nullptr) return Status::Ok();
  std::string where = file_;
  int line = first->line > 0 ? static_cast<int>(first->line) : line_;
  int column = first->line > 0 ? static_cast<int>(first->column) : column_;
  if (line > 0) where += ":" + std::to_string(line) + ":" + std::to_string(column);
  std::string what = "unknown param \"" + first_key + "\"";
  if (!driver_.empty()) what += " for driver \"" + driver_ + "\"";
  return InvalidArgument(where + ": sensor \"" + sensor_ + "\": " + what);
}

}  // namespace sluice
