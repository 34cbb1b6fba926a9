// Prometheus text exposition format 0.0.4 of a DaemonSnapshot (status.h).
#include <cmath>
#include <cstdio>
#include <functional>

#include "agent/daemon/status.h"
#include "agent/daemon/status_tables.h"
#include "common/json.h"

namespace sluice {

using status_internal::kSensorCounters;
using status_internal::Seconds;
using status_internal::SensorCounter;
using status_internal::SensorState;

std::string PromLabelEscape(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

namespace {

std::string PromValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 9e15) {
    return std::to_string(static_cast<long long>(v));
  }
  return JsonDouble(v);
}

// Writes one metric family at a time: HELP, TYPE, then its samples.
class Prom {
 public:
  explicit Prom(std::string* out) : out_(out) {}
  using Labels = std::vector<std::pair<const char*, std::string>>;
  Prom& Family(const std::string& name, const char* type, const char* help) {
    name_ = name;
    *out_ += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    return *this;
  }
  Prom& Sample(double v, const Labels& labels = {}) {
    *out_ += name_;
    if (!labels.empty()) {
      *out_ += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i) *out_ += ',';
        *out_ += labels[i].first;
        *out_ += "=\"" + PromLabelEscape(labels[i].second) + "\"";
      }
      *out_ += '}';
    }
    *out_ += ' ' + PromValue(v) + '\n';
    return *this;
  }
  // One sample per item of `items`, labelled `label` = name(item).
  template <typename T, typename Name, typename Value>
  void Each(const std::vector<T>& items, const char* label, Name name, Value value) {
    for (const T& x : items) Sample(static_cast<double>(value(x)), {{label, name(x)}});
  }

 private:
  std::string* out_;
  std::string name_;
};

// The listeners' metric fields, one family per metric name in the order of
// first appearance, one sample per field labelled listener="NAME" (and the
// field's own label).
void ListenerMetrics(const std::vector<ListenerSnapshot>& listeners, Prom* p) {
  std::vector<const StatusField*> heads;
  for (const ListenerSnapshot& l : listeners) {
    for (const StatusField& f : l.fields) {
      if (f.metric.empty() || f.kind == FieldKind::kText) continue;
      bool seen = false;
      for (const StatusField* h : heads) seen = seen || h->metric == f.metric;
      if (!seen) heads.push_back(&f);
    }
  }
  for (const StatusField* h : heads) {
    p->Family(h->metric, h->kind == FieldKind::kCounter ? "counter" : "gauge", h->help.c_str());
    for (const ListenerSnapshot& l : listeners) {
      for (const StatusField& f : l.fields) {
        if (f.metric != h->metric || f.kind == FieldKind::kText) continue;
        Prom::Labels labels{{"listener", l.name}};
        if (!f.label.first.empty()) labels.emplace_back(f.label.first.c_str(), f.label.second);
        p->Sample(f.value, labels);
      }
    }
  }
}

}  // namespace

std::string PrometheusText(const DaemonSnapshot& s) {
  std::string out;
  out.reserve(8192 + 1500 * (s.sensors.size() + s.upstreams.size()));
  Prom p(&out);
  p.Family("sluice_info", "gauge", "Agent id and version (always 1).")
      .Sample(1, {{"agent", s.agent_id}, {"version", s.version}});
  p.Family("sluice_uptime_seconds", "gauge", "Seconds since sluiced started.")
      .Sample(Seconds(s.uptime_us));

  using SS = SensorStatus;
  auto sname = [](const SS& x) { return x.name; };
  for (const SensorCounter& c : kSensorCounters) {
    p.Family(c.metric, "counter", c.help);
    p.Each(s.sensors, "sensor", sname, [&](const SS& x) { return x.*c.value; });
  }
  p.Family("sluice_sensor_failing", "gauge", "1 while the sensor is failing.");
  p.Each(s.sensors, "sensor", sname, [](const SS& x) { return x.failing ? 1 : 0; });
  p.Family("sluice_sensor_value", "gauge", "Last value read (after scale and offset).");
  for (const SS& x : s.sensors) {
    if (x.has_value) p.Sample(x.last_value, {{"sensor", x.name}});
  }
  p.Family("sluice_sensor_last_reading_timestamp_seconds", "gauge",
           "Wall time of the last value read.");
  for (const SS& x : s.sensors) {
    if (x.has_value) p.Sample(Seconds(x.last_ts_us), {{"sensor", x.name}});
  }

  ListenerMetrics(s.listeners, &p);

  const RingStats& r = s.ring;
  p.Family("sluice_buffer_events", "gauge", "Events in the ring.").Sample(r.events);
  p.Family("sluice_buffer_bytes", "gauge", "Accounted bytes in the ring.").Sample(r.bytes);
  p.Family("sluice_buffer_max_events", "gauge", "buffer.max_events.").Sample(s.max_events);
  p.Family("sluice_buffer_max_bytes", "gauge", "buffer.max_bytes.").Sample(s.max_bytes);
  p.Family("sluice_buffer_file_bytes", "gauge",
           "Bytes of every ring file in data_dir (buffer.reserve excluded).")
      .Sample(r.file_bytes);
  if (s.storage_bytes_written >= 0) {
    p.Family("sluice_storage_written_bytes_total", "counter",
             "Bytes this sluiced wrote to storage since it started (/proc/self/io).")
        .Sample(static_cast<uint64_t>(s.storage_bytes_written));
  }
  const RingCost cost = CostOf(s);
  if (cost.holds_s >= 0) {
    p.Family("sluice_buffer_holds_seconds", "gauge",
             "How long a full ring lasts at the current ingest rate.")
        .Sample(cost.holds_s);
  }
  p.Family("sluice_buffer_first_seq", "gauge", "Oldest seq in the ring (0: empty).")
      .Sample(r.first_seq);
  p.Family("sluice_buffer_last_seq", "gauge", "Last committed seq.").Sample(r.last_seq);
  p.Family("sluice_buffer_commits_total", "counter", "Group commits.").Sample(r.commits);
  p.Family("sluice_buffer_commit_failures_total", "counter", "Failed commit attempts.")
      .Sample(r.commit_failures);
  p.Family("sluice_buffer_committed_events_total", "counter",
           "Events committed (readings and alerts).")
      .Sample(r.committed_events);
  p.Family("sluice_buffer_written_bytes_total", "counter", "Accounted bytes committed to disk.")
      .Sample(r.committed_bytes);
  p.Family("sluice_buffer_evictions_total", "counter", "Events evicted, by reason.")
      .Sample(r.evicted_total - std::min(r.evicted_total, r.evicted_full), {{"reason", "limit"}})
      .Sample(r.evicted_full, {{"reason", "full_disk"}});
  p.Family("sluice_buffer_dropped_total", "counter",
           "Events producers gave up on because the queue stayed full.")
      .Sample(r.dropped);
  p.Family("sluice_buffer_failed_events_total", "counter",
           "Events still uncommitted (commits failing) when sluiced stopped.")
      .Sample(r.failed_events);
  p.Family("sluice_buffer_held_events", "gauge", "Events held for retry while commits fail.")
      .Sample(r.held_events);
  p.Family("sluice_buffer_commits_failing", "gauge", "1 while commits fail (storage error).")
      .Sample(r.commit_failing_since_us != 0 ? 1 : 0);
  p.Family("sluice_buffer_synced_seq", "gauge", "Every seq up to this one is fsynced.")
      .Sample(r.synced_seq);
  p.Family("sluice_buffer_sync_failures_total", "counter", "Failed periodic fsyncs.")
      .Sample(r.sync_failures);
  p.Family("sluice_buffer_file_replacements_total", "counter",
           "buffer.db deleted or replaced while open.")
      .Sample(r.file_replacements);
  p.Family("sluice_buffer_possible_loss_seqs", "gauge",
           "Seqs a start could not vouch for (skipped, possibly lost).")
      .Sample(r.gaps.seqs);
  p.Family("sluice_buffer_full_disk_total", "counter", "Times the disk was found full.")
      .Sample(r.full_events);
  p.Family("sluice_buffer_corrupt_recoveries_total", "counter", "Corrupt databases set aside.")
      .Sample(r.corrupt_recoveries);
  p.Family("sluice_healthy", "gauge", "1 while the pipeline runs and commits succeed.")
      .Sample(s.healthy ? 1 : 0);
  p.Family("sluice_buffer_writer_idle_seconds", "gauge",
           "Since the writer thread last went round its loop (about 1 s when idle).")
      .Sample(Seconds(r.writer_idle_us));
  p.Family("sluice_buffer_last_commit_timestamp_seconds", "gauge", "Wall time of the last commit.")
      .Sample(Seconds(r.last_commit_us));

  using US = UpstreamSnapshot;
  auto uname = [](const US& u) { return u.stats.name; };
  auto each_up = [&](const char* name, const char* type, const char* help, auto value) {
    p.Family(name, type, help);
    p.Each(s.upstreams, "upstream", uname, value);
  };
  each_up("sluice_upstream_connected", "gauge", "1 while connected.",
          [](const US& u) { return u.stats.connected ? 1 : 0; });
  each_up("sluice_upstream_acked_seq", "gauge", "Every seq up to this is acknowledged.",
          [](const US& u) { return u.stats.acked_seq; });
  each_up("sluice_upstream_backlog_events", "gauge", "Committed events not yet acknowledged.",
          [](const US& u) { return u.stats.backlog; });
  each_up("sluice_upstream_backlog_age_seconds", "gauge", "Age of the oldest unacknowledged event.",
          [&](const US& u) {
            return u.oldest_unacked_ts_us ? Seconds(s.now_us - u.oldest_unacked_ts_us) : 0.0;
          });
  each_up("sluice_upstream_sent_events_total", "counter", "Events published (with resends).",
          [](const US& u) { return u.stats.sent_events; });
  each_up("sluice_upstream_acked_events_total", "counter", "Events acknowledged.",
          [](const US& u) { return u.stats.acked_events; });
  each_up("sluice_upstream_publishes_total", "counter", "MQTT messages published.",
          [](const US& u) { return u.stats.publishes; });
  each_up("sluice_upstream_reconnects_total", "counter", "Connections after the first.",
          [](const US& u) { return u.stats.reconnects; });
  each_up("sluice_upstream_connect_failures_total", "counter", "Failed connection attempts.",
          [](const US& u) { return u.stats.connect_failures; });
  each_up("sluice_upstream_evicted_unsent_total", "counter",
          "Events evicted before this upstream got them.",
          [](const US& u) { return u.evicted_unsent; });
  each_up("sluice_upstream_send_rate", "gauge", "Events sent per second, last second.",
          [](const US& u) { return u.stats.send_rate; });
  each_up("sluice_upstream_ack_rate", "gauge", "Events acknowledged per second, last second.",
          [](const US& u) { return u.stats.ack_rate; });

  const rules::EngineStats& e = s.rules.engine;
  p.Family("sluice_rules_loaded", "gauge", "Rules installed.").Sample(e.rules);
  p.Family("sluice_rules_firing", "gauge", "Rules firing now.").Sample(e.firing);
  p.Family("sluice_rule_evaluations_total", "counter", "Rule evaluations.").Sample(e.evaluations);
  p.Family("sluice_rules_readings_total", "counter", "Readings seen by the rules, by result.")
      .Sample(e.accepted, {{"result", "accepted"}})
      .Sample(e.late, {{"result", "late"}})
      .Sample(e.future, {{"result", "future"}})
      .Sample(e.invalid, {{"result", "invalid"}})
      .Sample(e.bad_quality, {{"result", "bad_quality"}})
      .Sample(e.unused, {{"result", "unused"}});
  p.Family("sluice_rules_ahead_readings_total", "counter",
           "Readings stamped ahead of the wall clock, held until it catches up.")
      .Sample(e.ahead);
  p.Family("sluice_rules_ahead_dropped_total", "counter",
           "Held readings dropped because the hold was full.")
      .Sample(e.ahead_dropped);
  p.Family("sluice_rules_held_readings", "gauge", "Readings waiting for the wall clock now.")
      .Sample(e.held);
  p.Family("sluice_alerts_total", "counter", "Alerts raised, by state.")
      .Sample(e.fired, {{"state", "firing"}})
      .Sample(e.resolved, {{"state", "resolved"}});
  p.Family("sluice_alerts_dropped_total", "counter", "Alerts the buffer refused.")
      .Sample(s.rules.alerts_dropped);
  p.Family("sluice_rule_firing", "gauge", "1 while the rule is firing.");
  for (const RuleBrief& b : s.rules.rules) {
    p.Sample(b.phase == rules::Phase::kFiring ? 1 : 0,
             {{"rule", b.name}, {"severity", b.severity}});
  }

  p.Family("sluice_control_requests_total", "counter", "Control socket requests answered.")
      .Sample(s.control.requests);
  p.Family("sluice_control_bad_requests_total", "counter", "Malformed or oversized requests.")
      .Sample(s.control.bad_requests + s.control.oversized);
  p.Family("sluice_control_rejected_total", "counter",
           "Connections refused, timed out or closed idle to make room.")
      .Sample(s.control.rejected + s.control.timeouts + s.control.evicted);
  return out;
}

}  // namespace sluice
