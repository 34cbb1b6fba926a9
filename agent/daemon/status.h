// What `sluice status` and `sluice metrics` show: one snapshot of the
// daemon (agent, sensors, push listeners, buffer, upstreams, rules, control
// server), rendered as the control socket's status response (JSON) or as
// Prometheus text exposition format 0.0.4. No credentials: upstream URLs are
// redacted (RedactUrl) and nothing else holds secrets.
//
// Thread-safety: pure functions over a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/control/control_server.h"
#include "agent/daemon/rules_runner.h"
#include "agent/uplink/uplink.h"
#include "buffer/ring.h"
#include "drivers/driver_status.h"
#include "drivers/scheduler.h"

namespace sluice {

// A driver that reports itself as a listener (push): its sensor's name, its
// driver and the fields it reported (drivers/driver_status.h), rendered as
// an object of "listeners" and as samples labelled listener="NAME".
struct ListenerSnapshot {
  std::string name;
  std::string driver;
  std::vector<StatusField> fields;
};

struct UpstreamSnapshot {
  UplinkStats stats;
  int64_t since_wall_us = 0;         // when it last (dis)connected
  uint64_t evicted_unsent = 0;       // evicted before this upstream got them
  int64_t oldest_unacked_ts_us = 0;  // event time of acked_seq + 1 (0: none)
  double drain_eta_s = -1;           // backlog / (ack rate - ingest rate); -1: not draining
};

struct DaemonSnapshot {
  std::string agent_id;
  std::string version;
  int64_t pid = 0;
  int64_t now_us = 0;      // wall clock
  int64_t started_us = 0;  // wall clock at start
  int64_t uptime_us = 0;   // monotonic
  // The pipeline runs (writer loop and rules thread alive: what earns the
  // watchdog's ping, Daemon::Healthy) and commits succeed.
  bool healthy = false;
  std::string unhealthy_reason;  // why not, "" when healthy
  std::vector<SensorStatus> sensors;
  std::vector<std::string> sensor_units;  // parallel to sensors
  std::vector<ListenerSnapshot> listeners;
  RingStats ring;
  std::string durability;  // off | normal | full
  uint64_t max_events = 0;
  uint64_t max_bytes = 0;
  double ingest_rate = 0;  // events committed per second, recently
  int64_t storage_bytes_written = -1;  // ProcessStorageBytesWritten(); -1: unknown
  std::vector<UpstreamSnapshot> upstreams;
  bool rules_enabled = false;
  RulesRunnerStats rules;
  ControlServerStats control;
};

// What the ring costs per reading, from a snapshot; -1 where unknown.
struct RingCost {
  // storage_bytes_written ÷ events this process committed.
  double written_per_reading = -1;
  // file_bytes ÷ events stored.
  double at_rest_per_reading = -1;
  // How long a full ring lasts at the current ingest rate: the events it
  // can hold (max_events, or max_bytes at today's bytes per event,
  // whichever is less) ÷ ingest_rate.
  double holds_s = -1;
};
RingCost CostOf(const DaemonSnapshot& s);

// Fills drain_eta_s of every upstream from its backlog and rates.
void EstimateDrain(DaemonSnapshot* s);

// {"ok":true,"agent":{...},"sensors":[...],"listeners":[...],"buffer":{...},
//  "upstreams":[...],"rules":{...},"alerts":[...],"control":{...}}
// (field list: README "Control socket").
std::string StatusJson(const DaemonSnapshot& s);

// Prometheus text exposition 0.0.4: # HELP and # TYPE for every family,
// counters end in _total, label values escaped.
std::string PrometheusText(const DaemonSnapshot& s);

// Escapes a Prometheus label value (\\, \", \n).
std::string PromLabelEscape(const std::string& v);

}  // namespace sluice
