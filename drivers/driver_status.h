// What a driver reports about itself for `sluice status` and /metrics.
//
// A driver's own figures are one table of named values (StatusFields),
// rendered by the daemon into the status JSON (members of the driver's
// object, in table order) and into Prometheus text (the fields that name a
// metric family): a new counter is one line in the driver. An active driver
// that stands for one sensor (mqtt) reports a SensorStatus instead, shown
// beside the polled sensors.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

// One sensor's state, for `sluice status`.
struct SensorStatus {
  std::string name;
  std::string driver;
  int64_t interval_us = 0;
  // What a snapshot (Scheduler::Statuses) says, first match wins:
  //   "stuck"   a read overran its timeout and has not returned (stuck_for_us)
  //   "late"    not sampled for several intervals past its due time
  //             (overdue_us > max(kLateIntervals intervals, the read timeout))
  //   "failing" the last sample failed
  //   "waiting" not sampled yet;  "ok" otherwise.
  // Empty in statuses not made by a Scheduler: derive it from `failing`.
  std::string state;
  bool failing = false;       // the last sample failed (see also `state`)
  bool has_value = false;
  double last_value = 0;      // after scale/offset
  int64_t last_ts_us = 0;     // wall time of last_value
  uint64_t reads = 0;         // Sample() calls
  uint64_t errors = 0;        // failed samples (error, NaN, inf)
  uint64_t submitted = 0;     // readings accepted by the sink
  uint64_t suppressed = 0;    // held back by the deadband
  uint64_t dropped = 0;       // refused by a full sink
  uint64_t missed = 0;        // slots skipped because the scheduler was late
  uint64_t timeouts = 0;      // blocking reads that overran (also in errors)
  std::string last_error;
  int64_t last_error_ts_us = 0;
  int consecutive_failures = 0;
  int64_t last_sample_ts_us = 0;  // wall time the last read returned (ok or not)
  int64_t stuck_for_us = 0;       // "stuck": how long the hung read has run
  int64_t overdue_us = 0;         // how long past its due time the next sample is
};

enum class FieldKind { kCounter, kGauge, kText };

// One named value. Counters only grow; gauges go up and down; text is JSON
// only. Counter and gauge values with no fraction print as integers.
struct StatusField {
  std::string name;  // JSON member name
  FieldKind kind = FieldKind::kCounter;
  double value = 0;  // kCounter, kGauge
  std::string text;  // kText
  // Prometheus: the family this value is a sample of ("": JSON only), its
  // HELP text (the family's first field gives it) and an optional extra
  // label (e.g. {"result", "ok"}) telling apart samples of one family.
  std::string metric;
  std::string help;
  std::pair<std::string, std::string> label;
};

// Builds a field table in order:
//   f.Text("listen", address).Counter("lines_ok", n, "sluice_push_lines_total",
//                                     "Push lines received, by result.", {"result", "ok"});
class StatusFields {
 public:
  StatusFields& Counter(std::string name, double value, std::string metric = "",
                        std::string help = "", std::pair<std::string, std::string> label = {}) {
    return Add(std::move(name), FieldKind::kCounter, value, std::move(metric), std::move(help),
               std::move(label));
  }
  StatusFields& Gauge(std::string name, double value, std::string metric = "",
                      std::string help = "", std::pair<std::string, std::string> label = {}) {
    return Add(std::move(name), FieldKind::kGauge, value, std::move(metric), std::move(help),
               std::move(label));
  }
  StatusFields& Text(std::string name, std::string text) {
    StatusField f;
    f.name = std::move(name);
    f.kind = FieldKind::kText;
    f.text = std::move(text);
    fields_.push_back(std::move(f));
    return *this;
  }
  std::vector<StatusField> Take() { return std::move(fields_); }

 private:
  StatusFields& Add(std::string name, FieldKind kind, double value, std::string metric,
                    std::string help, std::pair<std::string, std::string> label) {
    fields_.push_back({std::move(name), kind, value, std::string(), std::move(metric),
                       std::move(help), std::move(label)});
    return *this;
  }
  std::vector<StatusField> fields_;
};

// What Driver::Report() returns.
struct DriverStatus {
  enum class Role {
    kNone,      // nothing beyond what the Scheduler reports (polled drivers)
    kSensor,    // `sensor` is a row beside the polled sensors
    kListener,  // `fields` describe a listener (status "listeners")
  };
  Role role = Role::kNone;
  SensorStatus sensor;  // kSensor; the daemon fills name and driver
  std::vector<StatusField> fields;  // kListener
};

}  // namespace sluice
