// In-memory forms of what flows through the pipeline: readings from
// drivers, alerts from rules. The ring stores them FlatBuffers-encoded
// (schemas/sluice.fbs, see buffer/codec.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

enum class EventKind : uint8_t { kReading = 0, kAlert = 1 };
enum class Quality : uint8_t { kGood = 0, kUncertain = 1, kBad = 2 };

// Eviction priority: lower is evicted first.
constexpr int kReadingPriority = 0;
constexpr int kAlertPriority = 10;

const char* QualityName(Quality q);  // "good", "uncertain", "bad"

struct Reading {
  std::string sensor;
  int64_t ts_us = 0;  // event time, microseconds since the Unix epoch
  double value = 0;
  std::string unit;
  Quality quality = Quality::kGood;
};

// How text (alert messages, CLI lines, logs) shows "no value".
constexpr const char kNoValueText[] = "n/a";

struct Alert {
  std::string rule;
  std::string state;     // "firing" | "resolved"
  std::string severity;  // "info" | "warning" | "critical"
  int64_t ts_us = 0;
  // The rule's subject; NaN when it has no value (JSON null, kNoValueText
  // in text).
  double value = 0;
  std::string message;
  std::vector<std::pair<std::string, std::string>> labels;
};

}  // namespace sluice
