#include "agent/daemon/status.h"

#include <cmath>
#include <cstdio>
#include <functional>

#include "common/json.h"

namespace sluice {
namespace {

// A counter or gauge: integral values as integers (as counts always were).
void AppendNumber(double v, std::string* out) {
  if (v == std::floor(v) && std::fabs(v) < 9e15) {
    *out += std::to_string(static_cast<long long>(v));
  } else {
    AppendJsonDouble(v, out);
  }
}

// Appends the members of one JSON object.
class Obj {
 public:
  explicit Obj(std::string* out) : out_(out) { *out_ += '{'; }
  void U(const char* k, uint64_t v) {
    Key(k);
    *out_ += std::to_string(v);
  }
  void I(const char* k, int64_t v) {
    Key(k);
    *out_ += std::to_string(v);
  }
  void D(const char* k, double v) {
    Key(k);
    AppendJsonDouble(v, out_);
  }
  void S(const char* k, const std::string& v) {
    Key(k);
    AppendJsonString(v, out_);
  }
  void B(const char* k, bool v) {
    Key(k);
    *out_ += v ? "true" : "false";
  }
  void N(const char* k, double v) {
    Key(k);
    AppendNumber(v, out_);
  }
  void Null(const char* k) {
    Key(k);
    *out_ += "null";
  }
  // A timestamp: null when 0 (never).
  void Ts(const char* k, int64_t us) { us == 0 ? Null(k) : I(k, us); }
  std::string* Raw(const char* k) {
    Key(k);
    return out_;
  }
  void End() { *out_ += '}'; }

 private:
  void Key(const char* k) {
    if (!first_) *out_ += ',';
    first_ = false;
    AppendJsonString(k, out_);
    *out_ += ':';
  }
  std::string* out_;
  bool first_ = true;
};

template <typename T, typename Fn>
void Array(std::string* out, const std::vector<T>& items, Fn fn) {
  *out += '[';
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) *out += ',';
    fn(items[i]);
  }
  *out += ']';
}

std::string SensorState(const SensorStatus& s) {
  if (!s.state.empty()) return s.state;
  return s.failing ? "failing" : s.reads == 0 ? "waiting" : "ok";
}

double Seconds(int64_t us) { return static_cast<double>(us) / 1e6; }

// The sensor counters, in the order of the status JSON and /metrics.
struct SensorCounter {
  const char* json;
  const char* metric;
  const char* help;
  uint64_t SensorStatus::*value;
};
constexpr SensorCounter kSensorCounters[] = {
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

}  // namespace

void EstimateDrain(DaemonSnapshot* s) {
  for (UpstreamSnapshot& u : s->upstreams) {
    double net = u.stats.ack_rate - s->ingest_rate;
    u.drain_eta_s = -1;
    if (u.stats.backlog == 0)
      u.drain_eta_s = 0;
    else if (u.stats.connected && net > 0.01)
      u.drain_eta_s = static_cast<double>(u.stats.backlog) / net;
  }
}

std::string StatusJson(const DaemonSnapshot& s) {
  std::string out;
  out.reserve(4096 + 400 * (s.sensors.size() + s.upstreams.size() + s.rules.rules.size()));
  Obj top(&out);
  top.B("ok", true);
  {
    Obj a(top.Raw("agent"));
    a.S("id", s.agent_id);
    a.S("version", s.version);
    a.I("pid", s.pid);
    a.I("now_us", s.now_us);
    a.I("started_us", s.started_us);
    a.D("uptime_s", Seconds(s.uptime_us));
    a.B("healthy", s.healthy);
    if (s.unhealthy_reason.empty())
      a.Null("unhealthy_reason");
    else
      a.S("unhealthy_reason", s.unhealthy_reason);
    a.End();
  }
  Array(top.Raw("sensors"), s.sensors, [&](const SensorStatus& x) {
    size_t i = static_cast<size_t>(&x - s.sensors.data());
    Obj o(&out);
    o.S("name", x.name);
    o.S("driver", x.driver);
    o.S("unit", i < s.sensor_units.size() ? s.sensor_units[i] : "");
    o.D("interval_s", Seconds(x.interval_us));
    o.S("state", SensorState(x));
    if (x.has_value)
      o.D("value", x.last_value);
    else
      o.Null("value");
    o.Ts("value_ts_us", x.last_ts_us);
    for (const SensorCounter& c : kSensorCounters) o.U(c.json, x.*c.value);
    o.I("consecutive_failures", x.consecutive_failures);
    o.S("last_error", x.last_error);
    o.Ts("last_error_ts_us", x.last_error_ts_us);
    o.Ts("last_sample_ts_us", x.last_sample_ts_us);
    o.D("stuck_for_s", Seconds(x.stuck_for_us));
    o.D("overdue_s", Seconds(x.overdue_us));
    o.End();
  });
  Array(top.Raw("listeners"), s.listeners, [&](const ListenerSnapshot& x) {
    Obj o(&out);
    o.S("name", x.name);
    o.S("driver", x.driver);
    for (const StatusField& f : x.fields) {
      if (f.kind == FieldKind::kText)
        o.S(f.name.c_str(), f.text);
      else
        o.N(f.name.c_str(), f.value);
    }
    o.End();
  });
  {
    const RingStats& r = s.ring;
    Obj b(top.Raw("buffer"));
    b.U("events", r.events);
    b.U("bytes", r.bytes);
    b.U("max_events", s.max_events);
    b.U("max_bytes", s.max_bytes);
    b.U("file_bytes", r.file_bytes);
    b.U("first_seq", r.first_seq);
    b.U("last_seq", r.last_seq);
    b.Ts("first_ts_us", r.first_ts_us);
    b.Ts("last_ts_us", r.last_ts_us);
    b.S("durability", s.durability);
    b.U("commits", r.commits);
    b.U("commit_failures", r.commit_failures);
    b.U("committed_events", r.committed_events);
    b.U("committed_bytes", r.committed_bytes);
    b.Ts("last_commit_us", r.last_commit_us);
    b.D("ingest_rate", s.ingest_rate);
    {
      Obj e(b.Raw("evicted"));
      e.U("total", r.evicted_total);
      e.U("limit", r.evicted_total - std::min(r.evicted_total, r.evicted_full));
      e.U("full_disk", r.evicted_full);
      e.End();
    }
    b.U("dropped", r.dropped);
    b.U("failed_events", r.failed_events);
    b.U("held_events", r.held_events);
    b.Ts("commit_failing_since_us", r.commit_failing_since_us);
    if (r.last_commit_error.empty())
      b.Null("last_commit_error");
    else
      b.S("last_commit_error", r.last_commit_error);
    b.U("synced_seq", r.synced_seq);
    b.Ts("last_sync_us", r.last_sync_us);
    b.U("sync_failures", r.sync_failures);
    b.U("file_replacements", r.file_replacements);
    {
      Obj g(b.Raw("possible_loss"));
      g.U("ranges", r.gaps.ranges);
      g.U("seqs", r.gaps.seqs);
      g.U("last_first_seq", r.gaps.last_first);
      g.U("last_last_seq", r.gaps.last_last);
      if (r.gaps.ranges == 0)
        g.Null("last_reason");
      else
        g.S("last_reason", r.gaps.last_reason);
      g.Ts("last_at_us", r.gaps.last_at_us);
      g.End();
    }
    b.U("full_events", r.full_events);
    b.U("corrupt_recoveries", r.corrupt_recoveries);
    b.U("corrupt_rows", r.corrupt_rows);
    b.D("writer_idle_s", Seconds(r.writer_idle_us));
    b.End();
  }
  Array(top.Raw("upstreams"), s.upstreams, [&](const UpstreamSnapshot& x) {
    const UplinkStats& u = x.stats;
    Obj o(&out);
    o.S("name", u.name);
    o.S("url", u.url);
    o.B("connected", u.connected);
    o.Ts("since_us", x.since_wall_us);
    o.D("for_s", x.since_wall_us ? Seconds(s.now_us - x.since_wall_us) : 0.0);
    o.U("acked_seq", u.acked_seq);
    o.U("backlog", u.backlog);
    o.Ts("oldest_unacked_ts_us", x.oldest_unacked_ts_us);
    if (x.oldest_unacked_ts_us)
      o.D("backlog_age_s", Seconds(s.now_us - x.oldest_unacked_ts_us));
    else
      o.D("backlog_age_s", 0.0);
    o.D("send_rate", u.send_rate);
    o.D("ack_rate", u.ack_rate);
    if (x.drain_eta_s >= 0)
      o.D("drain_eta_s", x.drain_eta_s);
    else
      o.Null("drain_eta_s");
    o.U("sent_events", u.sent_events);
    o.U("acked_events", u.acked_events);
    o.U("publishes", u.publishes);
    o.U("reconnects", u.reconnects);
    o.U("connect_failures", u.connect_failures);
    o.U("evicted_unsent", x.evicted_unsent);
    o.U("corrupt_skipped", u.corrupt_skipped);
    o.S("last_error", u.last_error);
    o.End();
  });
  {
    const RulesRunnerStats& r = s.rules;
    const rules::EngineStats& e = r.engine;
    Obj o(top.Raw("rules"));
    o.B("enabled", s.rules_enabled);
    o.U("loaded", e.rules);
    Array(o.Raw("files"), r.files, [&](const std::string& f) { AppendJsonString(f, &out); });
    o.U("firing", e.firing);
    o.U("evaluated_seq", r.seq);
    o.U("readings", e.readings);
    o.U("accepted", e.accepted);
    o.U("late", e.late);
    o.U("future", e.future);
    o.U("ahead", e.ahead);
    o.U("ahead_dropped", e.ahead_dropped);
    o.U("held", e.held);
    o.U("invalid", e.invalid);
    o.U("unused", e.unused);
    o.U("evaluations", e.evaluations);
    o.U("fired", e.fired);
    o.U("resolved", e.resolved);
    o.U("alerts_committed", r.alerts_committed);
    o.U("alerts_dropped", r.alerts_dropped);
    o.U("missed", r.missed);
    Array(o.Raw("list"), r.rules, [&](const RuleBrief& b) {
      Obj x(&out);
      x.S("name", b.name);
      x.S("severity", b.severity);
      x.S("state", rules::PhaseName(b.phase));
      x.Ts("since_us", b.since_us);
      x.D("value", b.value);
      x.U("fired", b.fired);
      x.End();
    });
    o.End();
  }
  std::vector<RuleBrief> active;
  for (const RuleBrief& b : s.rules.rules) {
    if (b.phase == rules::Phase::kFiring) active.push_back(b);
  }
  Array(top.Raw("alerts"), active, [&](const RuleBrief& b) {
    Obj x(&out);
    x.S("rule", b.name);
    x.S("severity", b.severity);
    x.Ts("since_us", b.since_us);
    x.D("value", b.value);
    x.End();
  });
  {
    Obj c(top.Raw("control"));
    c.U("clients", s.control.clients);
    c.U("rejected", s.control.rejected);
    c.U("evicted", s.control.evicted);
    c.U("requests", s.control.requests);
    c.U("bad_requests", s.control.bad_requests);
    c.U("oversized", s.control.oversized);
    c.U("timeouts", s.control.timeouts);
    c.U("http_requests", s.control.http_requests);
    c.End();
  }
  top.End();
  return out;
}

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
  p.Family("sluice_buffer_file_bytes", "gauge", "Size of buffer.db on disk.").Sample(r.file_bytes);
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
