// Shared by the status JSON (status.cpp) and the Prometheus text
// (status_metrics.cpp): the sensor state and the one table of sensor
// counters. Private to agent/daemon/.
#pragma once

#include <cstdint>
#include <string>

#include "agent/daemon/status.h"

namespace sluice {
namespace status_internal {

inline std::string SensorState(const SensorStatus& s) {
  if (!s.state.empty()) return s.state;
  return s.failing ? "failing" : s.reads == 0 ? "waiting" : "ok";
}

inline double Seconds(int64_t us) { return static_cast<double>(us) / 1e6; }

// The sensor counters, in the order of the status JSON and /metrics.
struct SensorCounter {
  const char* json;
  const char* metric;
  const char* help;
  uint64_t SensorStatus::*value;
};
inline constexpr SensorCounter kSensorCounters[] = {
    {"reads", "sluice_sensor_reads_total", "Samples taken (Sample() calls).",
     &SensorStatus::reads},
    {"errors", "sluice_sensor_errors_total", "Failed samples (error, NaN, inf, timeout).",
     &SensorStatus::errors},
    {"readings", "sluice_sensor_readings_total", "Readings handed to the buffer.",
     &SensorStatus::submitted},
    {"suppressed", "sluice_sensor_suppressed_total", "Readings held back by the deadband.",
     &SensorStatus::suppressed},
    {"dropped", "sluice_sensor_dropped_total", "Readings refused by a full pipeline.",
     &SensorStatus::dropped},
    {"missed", "sluice_sensor_missed_total", "Sampling slots skipped (scheduler late).",
     &SensorStatus::missed},
};

}  // namespace status_internal
}  // namespace sluice
