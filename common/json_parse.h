// A small JSON reader (RFC 8259) for control-socket requests, CLI responses
// and sensor payloads. Bounded: input size, nesting depth and element count
// are capped, so hostile input can neither recurse deeply nor allocate
// without bound. Thread-safe (pure functions; JsonValue is a plain value).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice {

class JsonValue {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  using Member = std::pair<std::string, JsonValue>;

  JsonValue() = default;  // null
  static JsonValue Bool(bool b);
  static JsonValue Number(double d);
  static JsonValue String(std::string s);
  static JsonValue Array(std::vector<JsonValue> items);
  static JsonValue Object(std::vector<Member> members);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Typed access; a value of another type gives false / 0 / "" / empty.
  bool AsBool() const { return type_ == Type::kBool && bool_; }
  double AsNumber() const { return type_ == Type::kNumber ? number_ : 0; }
  const std::string& AsString() const;  // the string, or "" for others
  const std::vector<JsonValue>& items() const { return items_; }
  // Object members in document order (duplicate keys are kept; Find()
  // returns the last, as most parsers do).
  const std::vector<Member>& members() const { return members_; }

  // The member `key` of an object, or null if absent / not an object.
  const JsonValue* Find(std::string_view key) const;
  // A member found by a simple path: "$.a.b[2].c", "a.b", "$['k']" (a
  // leading "$" is optional; ".key", "[index]" and "['key']"/["key"]
  // steps). Null when any step is absent or the path is malformed.
  const JsonValue* AtPath(std::string_view path) const;

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<Member> members_;
};

struct JsonLimits {
  size_t max_bytes = 1 << 20;      // longer input is refused before parsing
  size_t max_depth = 64;           // nested arrays/objects
  size_t max_elements = 1 << 16;   // values in the whole document
};

// Parses exactly one JSON value (surrounding whitespace allowed). Errors are
// InvalidArgument "line L col C: what" (1-based, col in bytes). Strings must
// be valid UTF-8; \u escapes (with surrogate pairs) are decoded to UTF-8;
// numbers are finite doubles.
StatusOr<JsonValue> ParseJson(std::string_view text, const JsonLimits& limits = {});

}  // namespace sluice
