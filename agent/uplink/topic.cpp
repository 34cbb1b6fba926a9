#include "agent/uplink/topic.h"

namespace sluice {

StatusOr<TopicTemplate> TopicTemplate::Parse(const std::string& text) {
  if (text.empty()) return InvalidArgument("topic template is empty");
  if (text.find_first_of("+#") != std::string::npos) {
    return InvalidArgument("topic template '" + text + "' contains an MQTT wildcard (+ or #)");
  }
  TopicTemplate t;
  t.text_ = text;
  size_t i = 0;
  while (i < text.size()) {
    const size_t open = text.find('{', i);
    const size_t close_stray = text.find('}', i);
    if (close_stray != std::string::npos && (open == std::string::npos || close_stray < open)) {
      return InvalidArgument("topic template '" + text + "': unmatched '}'");
    }
    if (open == std::string::npos) {
      t.pieces_.push_back({Part::kLiteral, text.substr(i)});
      break;
    }
    if (open > i) t.pieces_.push_back({Part::kLiteral, text.substr(i, open - i)});
    const size_t close = text.find('}', open);
    if (close == std::string::npos) {
      return InvalidArgument("topic template '" + text + "': unclosed '{'");
    }
    const std::string name = text.substr(open + 1, close - open - 1);
    if (name == "agent") {
      t.pieces_.push_back({Part::kAgent, {}});
    } else if (name == "sensor") {
      t.pieces_.push_back({Part::kSensor, {}});
      t.varies_ = true;
    } else if (name == "rule") {
      t.pieces_.push_back({Part::kRule, {}});
      t.varies_ = true;
    } else {
      return InvalidArgument("topic template '" + text + "': unknown placeholder {" + name +
                             "} (use {agent}, {sensor}, {rule})");
    }
    i = close + 1;
  }
  return t;
}

void TopicTemplate::Expand(std::string_view agent, std::string_view sensor,
                           std::string_view rule, std::string* out) const {
  out->clear();
  for (const Piece& p : pieces_) {
    switch (p.part) {
      case Part::kLiteral: out->append(p.literal); break;
      case Part::kAgent: out->append(agent); break;
      case Part::kSensor: out->append(sensor); break;
      case Part::kRule: out->append(rule); break;
    }
  }
}

}  // namespace sluice
