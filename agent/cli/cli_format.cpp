#include "agent/cli/cli_format.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "agent/payload/payload.h"
#include "agent/payload/stored_reading.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/units.h"

namespace sluice {
namespace cli {
namespace {

void AppendCsvField(const std::string& f, std::string* out) {
  if (f.find_first_of(",\"\r\n") == std::string::npos) {
    out->append(f);
    return;
  }
  out->push_back('"');
  for (char c : f) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

std::string CsvNumber(double v) { return std::isfinite(v) ? JsonDouble(v) : ""; }

}  // namespace

const char* const kCsvHeader =
    "seq,time,ts_us,kind,sensor,value,unit,quality,rule,state,severity,message,labels\n";

int ParseFilterArgs(const CommandSpec& spec, const Parsed& args, HistoryFilter* filter) {
  const int64_t now = SystemClock::Get().NowWallUs();
  for (const char* name : {"--since", "--until"}) {
    if (!args.Has(name)) continue;
    std::string text = args.Get(name);
    auto t = ParseTimeArg(text, now);
    if (!t.ok()) {
      return UsageError(spec, std::string(name) + " \"" + text + "\": " + t.status().message());
    }
    (name[2] == 's' ? filter->since_us : filter->until_us) = *t;
  }
  if (filter->since_us != INT64_MIN && filter->until_us != INT64_MAX &&
      filter->until_us <= filter->since_us) {
    return UsageError(spec, "--until must be later than --since");
  }
  filter->sensor_globs = args.All("--sensor");
  for (const std::string& g : filter->sensor_globs) {
    if (g.empty()) return UsageError(spec, "--sensor needs a name or glob");
  }
  return -1;
}

int DataDirOrExit(const Globals& globals, std::string* data_dir) {
  std::string agent;
  Status s = ResolveDataDir(globals, data_dir, &agent);
  if (s.ok()) return -1;
  std::fprintf(stderr, "%s\n", s.message().c_str());
  return kExitUsage;
}

int OpenSession(const CommandSpec& spec, const Globals& globals, const Parsed& args,
                HistorySession* s, void (*adjust)(HistoryFilter*)) {
  int rc = ParseFilterArgs(spec, args, &s->filter);
  if (rc >= 0) return rc;
  std::string data_dir;
  Status st = ResolveDataDir(globals, &data_dir, &s->agent);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return kExitUsage;
  }
  HistoryFilter asked = s->filter;
  if (adjust != nullptr) adjust(&asked);
  auto h = HistoryReader::Open(data_dir, asked);
  if (h.ok()) {
    st = (*h)->Range(&s->range);
    if (!st.ok()) st = Status(st.code(), (*h)->path() + ": " + st.message());
  } else {
    st = h.status();
  }
  if (!st.ok()) {
    std::fprintf(stderr, "sluice: %s\n", st.message().c_str());
    return kExitFailure;
  }
  s->db = std::move(*h);
  IgnoreSigpipe();
  InstallStopSignals();
  return -1;
}

void Note(const std::string& text) {
  if (!text.empty()) std::fprintf(stderr, "sluice: note: %s\n", text.c_str());
}

std::string HumanNumber(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string HumanLine(const StoredEvent& e) {
  Reading r;
  Alert a;
  const bool reading = DecodeStoredReading(e, &r);
  const bool alert = !reading && DecodeStoredAlert(e, &a);
  const int64_t ts = reading ? r.ts_us : alert ? a.ts_us : e.ts_us;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s  seq %-8" PRIu64 " ", FormatUtc(ts, true).c_str(), e.seq);
  std::string line = buf;
  if (reading) {
    std::snprintf(buf, sizeof buf, "%-24s %12s %s", r.sensor.c_str(), HumanNumber(r.value).c_str(),
                  r.unit.c_str());
    line += buf;
    if (r.quality != Quality::kGood) line += std::string("  (") + QualityName(r.quality) + ")";
  } else if (alert) {
    std::snprintf(buf, sizeof buf, "ALERT %-18s %-8s %-8s value %s", a.rule.c_str(),
                  a.state.c_str(), a.severity.c_str(),
                  std::isfinite(a.value) ? HumanNumber(a.value).c_str() : kNoValueText);
    line += buf;
    if (!a.message.empty()) line += "  " + a.message;
  } else {
    line += "(corrupt event)";
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line + "\n";
}

std::string JsonLine(const std::string& agent, const StoredEvent& e) {
  std::string out;
  if (!EventToJson(agent, e, &out).ok()) return "";
  if (agent.empty()) out.replace(0, sizeof("{\"agent\":\"\",") - 1, "{");
  out.push_back('\n');
  return out;
}

std::string CsvRow(const StoredEvent& e) {
  std::string row = std::to_string(e.seq);
  auto field = [&row](const std::string& f) {
    row.push_back(',');
    AppendCsvField(f, &row);
  };
  Reading r;
  Alert a;
  if (DecodeStoredReading(e, &r)) {
    field(FormatUtc(r.ts_us, true));
    field(std::to_string(r.ts_us));
    field("reading");
    field(r.sensor);
    field(CsvNumber(r.value));
    field(r.unit);
    field(QualityName(r.quality));
    row.append(",,,,,");
  } else if (DecodeStoredAlert(e, &a)) {
    field(FormatUtc(a.ts_us, true));
    field(std::to_string(a.ts_us));
    field("alert");
    field("");
    field(CsvNumber(a.value));
    row.append(",,");
    field(a.rule);
    field(a.state);
    field(a.severity);
    field(a.message);
    std::string labels;
    for (const auto& kv : a.labels) {
      labels += (labels.empty() ? "" : ";") + kv.first + "=" + kv.second;
    }
    field(labels);
  } else {
    return "";
  }
  row.push_back('\n');
  return row;
}

}  // namespace cli
}  // namespace sluice
