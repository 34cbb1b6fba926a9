// MQTT topic templates: `sluice/{agent}/{sensor}`, `.../alerts/{rule}`.
// Placeholders: {agent}, {sensor}, {rule}. For an alert, {sensor} is the
// rule name; for a reading, {rule} is empty; for a flatbuffers batch,
// {sensor} (and {rule}) is "batch".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice {

class TopicTemplate {
 public:
  TopicTemplate() = default;

  // Errors: empty template, an unknown or unclosed placeholder, or the MQTT
  // wildcards `+` / `#` (not allowed in a topic name).
  static StatusOr<TopicTemplate> Parse(const std::string& text);

  // Writes the topic into *out (replacing it). Thread-safe (const).
  void Expand(std::string_view agent, std::string_view sensor, std::string_view rule,
              std::string* out) const;
  // True if the expansion depends on {sensor} or {rule}.
  bool varies() const { return varies_; }
  const std::string& text() const { return text_; }

 private:
  enum class Part { kLiteral, kAgent, kSensor, kRule };
  struct Piece {
    Part part;
    std::string literal;
  };
  std::string text_;
  std::vector<Piece> pieces_;
  bool varies_ = false;
};

}  // namespace sluice
