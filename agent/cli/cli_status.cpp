// RenderStatus: the human layout of `sluice status` (80 columns).
#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "agent/cli/cli_live.h"
#include "common/event.h"
#include "common/units.h"

namespace sluice {
namespace {

constexpr size_t kWidth = 80;

double Num(const JsonValue& v, const char* key) {
  const JsonValue* x = v.Find(key);
  return x ? x->AsNumber() : 0;
}
bool IsNumber(const JsonValue& v, const char* key) {
  const JsonValue* x = v.Find(key);
  return x && x->is_number();
}
std::string Str(const JsonValue& v, const char* key) {
  const JsonValue* x = v.Find(key);
  return x ? x->AsString() : std::string();
}
const JsonValue& Member(const JsonValue& v, const char* key) {
  static const JsonValue kNull;
  const JsonValue* x = v.Find(key);
  return x ? *x : kNull;
}

std::string Printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// 1234567 -> "1,234,567".
std::string Count(double v) {
  std::string digits = std::to_string(static_cast<long long>(std::llround(v)));
  std::string out;
  size_t start = digits[0] == '-' ? 1 : 0;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > start && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Bytes(double b) {
  if (b < 1024) return Printf("%.0f B", b);
  if (b < 1048576) return Printf("%.1f KiB", b / 1024);
  if (b < 1073741824.0) return Printf("%.1f MiB", b / 1048576);
  return Printf("%.2f GiB", b / 1073741824.0);
}

std::string Age(double s) {
  if (!(s >= 0)) s = 0;
  if (s < 10) return Printf("%.1fs", s);
  long long t = std::llround(s);
  if (t < 60) return Printf("%llds", t);
  if (t < 3600) return Printf("%lldm%02llds", t / 60, t % 60);
  if (t < 86400) return Printf("%lldh%02lldm", t / 3600, t % 3600 / 60);
  return Printf("%lldd%02lldh", t / 86400, t % 86400 / 3600);
}

std::string Value(double v) { return Printf("%.6g", v); }

std::string Rate(double r) { return r < 100 ? Printf("%.1f/s", r) : Count(r) + "/s"; }

std::string Fit(std::string s, size_t width) {
  if (s.size() <= width) return s;
  if (width < 2) return s.substr(0, width);
  return s.substr(0, width - 1) + "~";
}

std::string Pad(const std::string& s, size_t width) {
  std::string out = Fit(s, width);
  out.resize(width, ' ');
  return out;
}

// Ages are measured against the daemon's clock (now_us).
double AgeOf(const JsonValue& v, const char* key, double now_us) {
  const JsonValue* x = v.Find(key);
  if (!x || !x->is_number()) return -1;
  return (now_us - x->AsNumber()) / 1e6;
}

std::string ProgressBar(double fraction, double eta_s) {
  const int width = 40;
  fraction = std::clamp(fraction, 0.0, 1.0);
  int fill = static_cast<int>(std::lround(fraction * width));
  std::string bar = "[" + std::string(static_cast<size_t>(fill), '#') +
                    std::string(static_cast<size_t>(width - fill), '.') + "]";
  return Printf("          %s %3d%%  ETA %s", bar.c_str(), static_cast<int>(fraction * 100),
                eta_s >= 0 ? Age(eta_s).c_str() : "-");
}

void RenderSensors(const JsonValue& st, double now, std::string* out) {
  const JsonValue& sensors = Member(st, "sensors");
  const JsonValue& listeners = Member(st, "listeners");
  if (sensors.items().empty() && listeners.items().empty()) {
    *out += "SENSORS   none configured\n";
    return;
  }
  if (!sensors.items().empty()) {
    *out += "SENSOR               STATE    VALUE             AGE     READS  ERRORS\n";
  }
  for (const JsonValue& s : sensors.items()) {
    std::string value = "-";
    if (const JsonValue* v = s.Find("value"); v && v->is_number()) {
      value = Value(v->AsNumber());
      if (!Str(s, "unit").empty()) value += " " + Str(s, "unit");
    }
    double age = AgeOf(s, "value_ts_us", now);
    std::string line = Pad(Str(s, "name"), 20) + " " + Pad(Str(s, "state"), 8) + " " +
                       Pad(value, 16) + " " + Printf("%6s", age >= 0 ? Age(age).c_str() : "-") +
                       " " + Printf("%9s", Count(Num(s, "reads")).c_str()) + " " +
                       Printf("%7s", Count(Num(s, "errors")).c_str());
    *out += line + "\n";
    const std::string state = Str(s, "state");
    double sampled = AgeOf(s, "last_sample_ts_us", now);
    std::string last = sampled >= 0 ? "last sampled " + Age(sampled) + " ago" : "never sampled";
    if (state == "stuck") {
      *out += Fit("                     a read is stuck for " + Age(Num(s, "stuck_for_s")) +
                      "; " + last,
                  kWidth) +
              "\n";
    } else if (state == "late") {
      *out += Fit("                     overdue by " + Age(Num(s, "overdue_s")) + "; " + last,
                  kWidth) +
              "\n";
    }
    if ((state == "failing" || ((state == "stuck" || state == "late") &&
                                Num(s, "consecutive_failures") > 0)) &&
        !Str(s, "last_error").empty()) {
      *out += Fit("                     last error: " + Str(s, "last_error"), kWidth) + "\n";
    }
  }
  for (const JsonValue& l : listeners.items()) {
    const double kernel_drops = Num(l, "kernel_drops");
    *out += Fit(Str(l, "driver") + " " + Pad(Str(l, "name"), 15) + " " + Count(Num(l, "lines_ok")) + " lines (" +
                    Count(Num(l, "lines_bad")) + " bad" +
                    (kernel_drops > 0 ? ", " + Count(kernel_drops) + " datagrams dropped by the kernel"
                                      : std::string()) +
                    "), " + Count(Num(l, "clients")) + " clients  " + Str(l, "listen"),
                kWidth) +
            "\n";
  }
}

void RenderBuffer(const JsonValue& b, double now, std::string* out) {
  *out +=
      Fit("BUFFER    " + Count(Num(b, "events")) + " events, " + Bytes(Num(b, "bytes")) + " of " +
              Bytes(Num(b, "max_bytes")) + " (file " + Bytes(Num(b, "file_bytes")) + ")",
          kWidth) +
      "\n";
  std::string range =
      "          seq " + Count(Num(b, "first_seq")) + " .. " + Count(Num(b, "last_seq"));
  const JsonValue* first = b.Find("first_ts_us");
  const JsonValue* last = b.Find("last_ts_us");
  if (first && first->is_number() && last && last->is_number()) {
    range += "   " + FormatUtc(static_cast<int64_t>(first->AsNumber()), false) + " .. " +
             FormatUtc(static_cast<int64_t>(last->AsNumber()), false);
  }
  *out += Fit(range, kWidth) + "\n";
  const JsonValue& ev = Member(b, "evicted");
  double commit_age = AgeOf(b, "last_commit_us", now);
  *out += Fit("          evicted " + Count(Num(ev, "total")) + " (limit " +
                  Count(Num(ev, "limit")) + ", full disk " + Count(Num(ev, "full_disk")) +
                  "), dropped " + Count(Num(b, "dropped")) + ", last commit " +
                  (commit_age >= 0 ? Age(commit_age) + " ago" : std::string("never")),
              kWidth) +
          "\n";
  *out += Fit("          durability " + Str(b, "durability") + ", " + Count(Num(b, "commits")) +
                  " commits, " + Bytes(Num(b, "committed_bytes")) + " written",
              kWidth) +
          "\n";
  // What each reading costs the storage, and how long the ring lasts.
  std::string cost;
  if (IsNumber(b, "storage_bytes_per_reading")) {
    cost += Count(Num(b, "storage_bytes_per_reading")) + " B written";
  }
  if (IsNumber(b, "bytes_per_reading_at_rest")) {
    cost += (cost.empty() ? "" : ", ") +
            Printf("%.1f B at rest", Num(b, "bytes_per_reading_at_rest"));
  }
  if (!cost.empty()) cost = "          " + cost + " per reading";
  if (IsNumber(b, "holds_s")) {
    const double days = Num(b, "holds_s") / 86400;
    cost += std::string(cost.empty() ? "          " : "; ") + "holds " +
            (days >= 1 ? Printf("%.1f days", days) : Age(Num(b, "holds_s"))) + " at " +
            Rate(Num(b, "ingest_rate"));
  }
  if (!cost.empty()) *out += Fit(cost, kWidth) + "\n";
  double failing = AgeOf(b, "commit_failing_since_us", now);
  if (failing >= 0) {
    *out += Fit("          COMMITS FAILING for " + Age(failing) + ", holding " +
                    Count(Num(b, "held_events")) + " events: " + Str(b, "last_commit_error"),
                kWidth) +
            "\n";
  }
  if (Num(b, "failed_events") > 0) {
    *out += Fit("          lost " + Count(Num(b, "failed_events")) +
                    " events still uncommitted at a stop",
                kWidth) +
            "\n";
  }
  const JsonValue& gaps = Member(b, "possible_loss");
  if (Num(gaps, "ranges") > 0) {
    *out += Fit("          possibly lost: " + Count(Num(gaps, "seqs")) + " seqs in " +
                    Count(Num(gaps, "ranges")) + " ranges, last " +
                    Count(Num(gaps, "last_first_seq")) + ".." +
                    Count(Num(gaps, "last_last_seq")) + " (" + Str(gaps, "last_reason") + ")",
                kWidth) +
            "\n";
  }
  if (Num(b, "file_replacements") > 0) {
    *out += Fit("          buffer.db deleted or replaced while open " +
                    Count(Num(b, "file_replacements")) + " times",
                kWidth) +
            "\n";
  }
}

void RenderUpstream(const JsonValue& u, double now, bool progress,
                    std::map<std::string, double>* peaks, std::string* out) {
  std::string name = Str(u, "name");
  bool connected = Num(u, "connected") != 0 || Member(u, "connected").AsBool();
  double since = AgeOf(u, "since_us", now);
  std::string state = connected ? "connected" : "DISCONNECTED";
  if (since >= 0) state += " for " + Age(since);
  *out += Fit("UPSTREAM  " + name + "  " + Str(u, "url") + "  " + state, kWidth) + "\n";
  double backlog = Num(u, "backlog");
  std::string line =
      "          acked " + Count(Num(u, "acked_seq")) + ", backlog " + Count(backlog);
  if (backlog > 0) line += " (oldest " + Age(Num(u, "backlog_age_s")) + ")";
  *out += Fit(line, kWidth) + "\n";
  const JsonValue* eta = u.Find("drain_eta_s");
  bool draining = backlog > 0 && eta && eta->is_number();
  std::string drain = "          send " + Rate(Num(u, "send_rate")) + ", ack " +
                      Rate(Num(u, "ack_rate")) + ", drain ";
  if (backlog == 0)
    drain += "up to date";
  else if (draining)
    drain += "in about " + Age(eta->AsNumber());
  else if (!connected)
    drain += "waiting for the link";
  else
    drain += Num(u, "ack_rate") > 0 ? "not keeping up" : "stalled (no acks last second)";
  *out += Fit(drain, kWidth) + "\n";
  *out += Fit("          reconnects " + Count(Num(u, "reconnects")) + ", connect failures " +
                  Count(Num(u, "connect_failures")) + ", evicted unsent " +
                  Count(Num(u, "evicted_unsent")),
              kWidth) +
          "\n";
  if (peaks) {
    double& peak = (*peaks)[name];
    if (backlog == 0) peak = 0;
    peak = std::max(peak, backlog);
    if (progress && draining && peak > 0) {
      *out += ProgressBar(1.0 - backlog / peak, eta->AsNumber()) + "\n";
    }
  }
  if (!connected && !Str(u, "last_error").empty()) {
    *out += Fit("          last error: " + Str(u, "last_error"), kWidth) + "\n";
  }
  if (!Str(u, "last_disconnect_reason").empty()) {
    *out += Fit("          last disconnect: " + Str(u, "last_disconnect_reason"), kWidth) + "\n";
  }
}

void RenderRules(const JsonValue& r, double now, const JsonValue& alerts, std::string* out) {
  if (!Member(r, "enabled").AsBool()) {
    *out += "RULES     none (rules.files is empty)\n";
    return;
  }
  size_t files = Member(r, "files").items().size();
  *out += Fit("RULES     " + Count(Num(r, "loaded")) + " loaded (" + std::to_string(files) +
                  (files == 1 ? " file), " : " files), ") + Count(Num(r, "firing")) +
                  " firing; fired " + Count(Num(r, "fired")) + ", resolved " +
                  Count(Num(r, "resolved")) + ", late " + Count(Num(r, "late")) + ", future " +
                  Count(Num(r, "future")),
              kWidth) +
          "\n";
  if (Num(r, "ahead") > 0 || Num(r, "held") > 0) {
    *out += Fit("          ahead of the clock " + Count(Num(r, "ahead")) + " (waiting " +
                    Count(Num(r, "held")) + ", dropped " + Count(Num(r, "ahead_dropped")) + ")",
                kWidth) +
            "\n";
  }
  for (const JsonValue& a : alerts.items()) {
    double age = AgeOf(a, "since_us", now);
    *out += Fit("ALERT     " + Pad(Str(a, "rule"), 24) + " " + Pad(Str(a, "severity"), 8) +
                    " firing " + (age >= 0 ? "for " + Age(age) : std::string()) + "  value " +
                    (IsNumber(a, "value") ? Value(Num(a, "value")) : kNoValueText),
                kWidth) +
            "\n";
  }
}

}  // namespace

std::string RenderStatus(const JsonValue& st, bool progress,
                         std::map<std::string, double>* peak_backlog) {
  std::string out;
  const JsonValue& agent = Member(st, "agent");
  double now = Num(agent, "now_us");
  out += Fit("sluiced " + Str(agent, "id") + "  version " + Str(agent, "version") + "  pid " +
                 std::to_string(static_cast<long long>(Num(agent, "pid"))) + "  up " +
                 Age(Num(agent, "uptime_s")),
             kWidth) +
         "\n";
  const JsonValue* healthy = agent.Find("healthy");
  if (healthy != nullptr && !healthy->AsBool()) {
    out += Fit("UNHEALTHY " + Str(agent, "unhealthy_reason"), kWidth) + "\n";
  }
  out += "\n";
  RenderSensors(st, now, &out);
  out += "\n";
  RenderBuffer(Member(st, "buffer"), now, &out);
  const JsonValue& ups = Member(st, "upstreams");
  if (ups.items().empty()) out += "\nUPSTREAM  none configured\n";
  for (const JsonValue& u : ups.items()) {
    out += "\n";
    RenderUpstream(u, now, progress, peak_backlog, &out);
  }
  out += "\n";
  RenderRules(Member(st, "rules"), now, Member(st, "alerts"), &out);
  return out;
}

}  // namespace sluice
