#include "agent/daemon/status.h"

#include <cmath>
#include <cstdio>
#include <functional>

#include "agent/daemon/status_tables.h"
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

}  // namespace

using status_internal::kSensorCounters;
using status_internal::Seconds;
using status_internal::SensorCounter;
using status_internal::SensorState;

RingCost CostOf(const DaemonSnapshot& s) {
  RingCost c;
  const RingStats& r = s.ring;
  if (s.storage_bytes_written >= 0 && r.committed_events > 0) {
    c.written_per_reading =
        static_cast<double>(s.storage_bytes_written) / static_cast<double>(r.committed_events);
  }
  if (r.events > 0) {
    c.at_rest_per_reading = static_cast<double>(r.file_bytes) / static_cast<double>(r.events);
  }
  if (r.events > 0 && r.bytes > 0 && s.ingest_rate > 0) {
    const double by_bytes = static_cast<double>(s.max_bytes) * static_cast<double>(r.events) /
                            static_cast<double>(r.bytes);
    c.holds_s = std::min(static_cast<double>(s.max_events), by_bytes) / s.ingest_rate;
  }
  return c;
}

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
    const RingCost cost = CostOf(s);
    if (s.storage_bytes_written >= 0)
      b.U("storage_bytes_written", static_cast<uint64_t>(s.storage_bytes_written));
    else
      b.Null("storage_bytes_written");
    for (const auto& [key, v] : {std::make_pair("storage_bytes_per_reading", cost.written_per_reading),
                                 std::make_pair("bytes_per_reading_at_rest", cost.at_rest_per_reading),
                                 std::make_pair("holds_s", cost.holds_s)}) {
      if (v >= 0)
        b.D(key, v);
      else
        b.Null(key);
    }
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
    if (u.last_disconnect_reason.empty())
      o.Null("last_disconnect_reason");
    else
      o.S("last_disconnect_reason", u.last_disconnect_reason);
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

}  // namespace sluice
