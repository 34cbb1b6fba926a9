// `sluice-bench drain`: a prebuilt backlog of N events (built with the real
// ring, no upstream acknowledged) forwarded by a real sluiced process to a
// loopback Mosquitto A at QoS 1, in json and in flatbuffers batches, with a
// Paho C subscriber counting every seq that arrives. Beside it, in the same
// run and on the same broker A: plain Paho QoS 1 publishing of N messages of
// the same JSON size, and a Mosquitto bridge B -> A draining a queued
// backlog (baselines.cpp).
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "agent/payload/payload.h"
#include "bench/bench.h"
#include "bench/drain.h"
#include "bench/util.h"
#include "buffer/codec.h"

namespace sluice {
namespace bench {
namespace {

constexpr const char* kAgent = "bench";
constexpr const char* kUpstream = "bench";

}  // namespace

std::string ATargetConfig(const Broker& a) {
  // queue_qos0_messages: with a QoS 0 counting subscriber, the bridge
  // baseline's persistent subscriber session must still queue.
  return "persistence true\npersistence_location " + a.dir() + "/\nqueue_qos0_messages true\n";
}

namespace {

size_t JsonSizeOf(uint64_t seq) {
  std::vector<Record> r = MakeRecords(seq - 1, 1);
  StoredEvent e;
  e.seq = seq;
  e.ts_us = r[0].ts_us;
  e.kind = r[0].kind;
  e.sensor = r[0].sensor;
  e.body = r[0].body;
  SetEncodedSeq(&e.body, seq);
  std::string json;
  if (!EventToJson(kAgent, e, &json).ok()) return 120;
  return json.size();
}

bool CopyDir(const std::string& from, const std::string& to, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(to, ec);
  for (const auto& entry : std::filesystem::directory_iterator(from, ec)) {
    if (!entry.is_regular_file()) continue;
    std::filesystem::copy_file(entry.path(), to + "/" + entry.path().filename().string(),
                               std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) break;
  }
  if (ec) *error = "copy " + from + " -> " + to + ": " + ec.message();
  return !ec;
}

DrainFigure RunSluiced(const DrainEnv& env, const std::string& backlog, bool flatbuffers,
                       size_t batch, int run) {
  DrainFigure f;
  f.events = env.n;
  const std::string fmt = flatbuffers ? "flatbuffers" : "json";
  const std::string dir = env.root + "/sluiced-" + fmt + "-" + std::to_string(run);
  if (!CopyDir(backlog, dir + "/data", &f.error)) return f;
  std::string conf;
  conf += "[agent]\nid = \"" + std::string(kAgent) + "\"\n";
  conf += "data_dir = \"" + dir + "/data\"\ncontrol_socket = \"" + dir + "/control.sock\"\n";
  conf += "shutdown_grace = \"5s\"\n";
  // The same limits the backlog was built with: nothing is evicted.
  RingOptions ro = RingOptionsFor(dir, env.n, Durability::kNormal);
  conf += "[buffer]\nmax_events = " + std::to_string(ro.max_events) + "\n";
  conf += "max_bytes = \"" + std::to_string(ro.max_bytes >> 20) + "MiB\"\n";
  conf += "[[upstream]]\nname = \"" + std::string(kUpstream) + "\"\n";
  conf += "url = \"mqtt://127.0.0.1:" + std::to_string(env.a->port()) + "\"\n";
  conf += "client_id = \"sluiced-" + fmt + "-" + std::to_string(run) + "\"\n";
  conf += "qos = 1\nformat = \"" + fmt + "\"\n";
  conf += "max_inflight = " + std::to_string(env.window) + "\n";
  conf += "batch_max_events = " + std::to_string(batch) + "\n";
  if (!WriteFile(dir + "/sluiced.toml", conf)) {
    f.error = "cannot write " + dir + "/sluiced.toml";
    return f;
  }
  Counter::Options co;
  co.url = env.a->url();
  co.client_id = "bench-count-" + fmt + "-" + std::to_string(run);
  co.filter = "sluice/bench/#";
  co.ignore_topic = "sluice/bench/status";
  co.kind = flatbuffers ? PayloadKind::kFlatbuffers : PayloadKind::kJson;
  co.qos = env.sub_qos;
  co.expected = env.n;
  Counter counter(co);
  if (!counter.Start(true, 10000000, &f.error)) return f;
  Child sluiced;
  const double self0 = SelfCpuSeconds(), a0 = ProcCpuSeconds(env.a->pid());
  const int64_t t0 = NowUs();
  if (!sluiced.Start({BinDir() + "/sluiced", "--config", dir + "/sluiced.toml"},
                     dir + "/sluiced.log", &f.error)) {
    return f;
  }
  const pid_t pid = sluiced.pid();
  int64_t peak = 0;
  bool done = WaitDrained(counter, &sluiced, pid, env.timeout_us, &peak, &f.error);
  f.subscriber_cpu_s = SelfCpuSeconds() - self0;
  f.broker_cpu_s = ProcCpuSeconds(env.a->pid()) - a0;
  if (sluiced.running()) {
    peak = std::max(peak, ProcStatusKiB(pid, "VmHWM"));  // just before stopping
    f.rss_anon_kib = ProcStatusKiB(pid, "RssAnon");
    f.rss_file_kib = ProcStatusKiB(pid, "RssFile");
    f.threads = ThreadCpu(pid);
    f.drainer_cpu_s = ProcCpuSeconds(pid);
    sluiced.Terminate(15000000);
    if (!sluiced.Succeeded() && f.error.empty()) {
      f.error = "sluiced stopped with " + DescribeStatus(sluiced.status());
    }
  }
  f.drainer_peak_rss_kib = std::max<int64_t>(peak, sluiced.MaxRssKiB());
  counter.Stop();
  f.count = counter.Result();
  f.messages = f.count.messages;
  f.seconds = static_cast<double>((done ? f.count.complete_us : f.count.last_us) - t0) / 1e6;
  f.first_arrival_s = static_cast<double>(f.count.first_us - t0) / 1e6;
  f.ok = done && f.count.distinct == env.n;
  if (!f.ok) f.error += " (sluiced log: " + dir + "/sluiced.log)";
  return f;
}

// sluiced with an empty buffer, connected and idle for a second: the
// footprint that does not depend on the backlog.
void RunSluicedIdle(const DrainEnv& env) {
  const std::string dir = env.root + "/sluiced-idle";
  ::mkdir(dir.c_str(), 0755);
  std::string conf = "[agent]\nid = \"" + std::string(kAgent) + "\"\ndata_dir = \"" + dir +
                     "/data\"\ncontrol_socket = \"" + dir + "/control.sock\"\n" +
                     "[[upstream]]\nname = \"" + kUpstream + "\"\nurl = \"mqtt://127.0.0.1:" +
                     std::to_string(env.a->port()) + "\"\nclient_id = \"sluiced-idle\"\n";
  std::string error;
  Child sluiced;
  if (!WriteFile(dir + "/sluiced.toml", conf) ||
      !sluiced.Start({BinDir() + "/sluiced", "--config", dir + "/sluiced.toml"},
                     dir + "/sluiced.log", &error)) {
    std::fprintf(stderr, "drain: idle sluiced: %s\n", error.c_str());
    return;
  }
  sluiced.Wait(1500000);
  JsonLine j("drain", "sluiced_idle");
  j.Int("events", 0);
  if (sluiced.running()) {
    const pid_t pid = sluiced.pid();
    j.Int("peak_rss_kib", ProcStatusKiB(pid, "VmHWM"))
        .Int("rss_anon_kib", ProcStatusKiB(pid, "RssAnon"))
        .Int("rss_file_kib", ProcStatusKiB(pid, "RssFile"))
        .Str("thread_cpu_s", ThreadCpu(pid));
    sluiced.Terminate(10000000);
  } else {
    j.Str("error", "sluiced exited: " + DescribeStatus(sluiced.status()));
  }
  j.Print();
}

double MedianOf(const std::vector<DrainFigure>& v, double (*get)(const DrainFigure&)) {
  std::vector<double> x;
  for (const auto& f : v) x.push_back(get(f));
  return Median(x);
}

// One JSON line (medians over runs) and one summary row per case.
void Report(const std::string& name, const std::vector<DrainFigure>& v,
            const std::string& drainer, const std::string& note, JsonLine* extra_out) {
  bool ok = true;
  uint64_t dup = 0, missing = 0, oor = 0, undecodable = 0;
  int64_t rss = 0;
  for (const auto& f : v) {
    ok = ok && f.ok;
    dup = std::max(dup, f.count.duplicates);
    missing = std::max(missing, f.events - std::min(f.events, f.count.distinct));
    oor = std::max(oor, f.count.out_of_range);
    undecodable = std::max(undecodable, f.count.undecodable);
    rss = std::max(rss, f.drainer_peak_rss_kib);
  }
  JsonLine& j = *extra_out;
  j.Int("events", static_cast<int64_t>(v.empty() ? 0 : v[0].events))
      .Num("seconds", MedianOf(v, [](const DrainFigure& f) { return f.seconds; }))
      .Num("events_per_s", MedianOf(v, [](const DrainFigure& f) { return f.events_per_s(); }))
      .Num("messages_per_s", MedianOf(v, [](const DrainFigure& f) { return f.messages_per_s(); }))
      .Num("steady_events_per_s", MedianOf(v, [](const DrainFigure& f) { return f.steady_events_per_s(); }))
      .Int("median_of", static_cast<int64_t>(v.size()))
      .Bool("complete", ok)
      .Int("missing", static_cast<int64_t>(missing))
      .Int("duplicates", static_cast<int64_t>(dup))
      .Int("out_of_range", static_cast<int64_t>(oor))
      .Int("undecodable", static_cast<int64_t>(undecodable))
      .Num("first_arrival_s", MedianOf(v, [](const DrainFigure& f) { return f.first_arrival_s; }))
      .Str("drainer", drainer)
      .Int("drainer_peak_rss_kib", rss)
      .Num("drainer_cpu_s", MedianOf(v, [](const DrainFigure& f) { return f.drainer_cpu_s; }))
      .Num("broker_cpu_s", MedianOf(v, [](const DrainFigure& f) { return f.broker_cpu_s; }))
      .Num("subscriber_cpu_s", MedianOf(v, [](const DrainFigure& f) { return f.subscriber_cpu_s; }));
  const double msgs = MedianOf(v, [](const DrainFigure& f) { return static_cast<double>(f.messages); });
  if (msgs > 0) {
    j.Num("drainer_cpu_us_per_msg",
          MedianOf(v, [](const DrainFigure& f) { return f.drainer_cpu_s; }) * 1e6 / msgs);
  }
  if (!v.empty() && !v[0].threads.empty()) {
    j.Int("rss_anon_kib", v[0].rss_anon_kib).Int("rss_file_kib", v[0].rss_file_kib);
    j.Str("thread_cpu_s", v[0].threads);
  }
  for (const auto& f : v) {
    if (!f.error.empty()) {
      j.Str("error", f.error);
      break;
    }
  }
  j.Print();
  char fig[96];
  std::snprintf(fig, sizeof(fig), "%s ev, %s msg",
                FormatRate(MedianOf(v, [](const DrainFigure& f) { return f.events_per_s(); })).c_str(),
                FormatRate(MedianOf(v, [](const DrainFigure& f) { return f.messages_per_s(); })).c_str());
  char rss_note[64];
  std::snprintf(rss_note, sizeof(rss_note), "peak RSS %.1f MiB", static_cast<double>(rss) / 1024);
  AddSummary({"drain", name, fig,
              std::string(rss_note) + (ok ? "" : "; INCOMPLETE") + (note.empty() ? "" : "; " + note)});
}

void Progress(const char* name, int run, int runs, const DrainFigure& f) {
  std::fprintf(stderr,
               "drain run %d/%d %s: %s %llu/%llu events in %.2f s = %.0f ev/s (steady %.0f), %.0f msg/s; "
               "drainer cpu %.1f s rss %lld KiB; broker cpu %.1f s; subscriber cpu %.1f s%s%s\n",
               run + 1, runs, name, f.ok ? "ok" : "FAILED",
               static_cast<unsigned long long>(f.count.distinct),
               static_cast<unsigned long long>(f.events), f.seconds, f.events_per_s(), f.steady_events_per_s(),
               f.messages_per_s(), f.drainer_cpu_s, static_cast<long long>(f.drainer_peak_rss_kib),
               f.broker_cpu_s, f.subscriber_cpu_s, f.error.empty() ? "" : ": ",
               f.error.c_str());
}

}  // namespace

int RunDrain(const Args& args) {
  DrainEnv env;
  env.n = args.events ? args.events : (args.quick ? 2000 : 1000000);
  env.bridge_n = args.bridge_events ? args.bridge_events : env.n;
  env.window = args.max_inflight;
  env.bridge_autosave = args.bridge_autosave;
  env.sub_qos = args.sub_qos;
  env.timeout_us = 30000000 + static_cast<int64_t>(env.n) * 250;  // 1M: 280 s
  const int runs = args.runs > 0 ? args.runs : 1;
  TempDir root;
  if (args.keep) root.Keep();
  env.root = root.path();
  env.json_size = JsonSizeOf(env.n / 2 + 1);

  ::mkdir((env.root + "/a").c_str(), 0755);
  Broker a("A", env.root + "/a");
  env.a = &a;
  std::string error;
  // Persistence on A only keeps the bridge baseline's subscriber session
  // across A's restart; autosave stays at its default (1800 s), so A never
  // saves during a measurement.
  if (!a.Start(ATargetConfig(a), &error)) {
    std::fprintf(stderr, "drain: %s\n", error.c_str());
    return 1;
  }
  const std::string backlog = env.root + "/backlog";
  auto built = BuildBacklog(backlog, env.n, {kUpstream});
  if (!built.ok()) {
    std::fprintf(stderr, "drain: backlog: %s\n", built.status().ToString().c_str());
    return 1;
  }
  JsonLine("drain", "backlog_build")
      .Int("events", static_cast<int64_t>(env.n))
      .Num("seconds", *built)
      .Num("events_per_s", static_cast<double>(env.n) / *built)
      .Int("db_bytes", static_cast<int64_t>(DirBytes(backlog)))
      .Int("json_payload_bytes", static_cast<int64_t>(env.json_size))
      .Print();

  RunSluicedIdle(env);
  std::map<std::string, std::vector<DrainFigure>> results;
  int rc = 0;
  for (int run = 0; run < runs; ++run) {
    auto record = [&](const char* name, DrainFigure f) {
      Progress(name, run, runs, f);
      if (!f.ok) rc = 1;
      results[name].push_back(std::move(f));
    };
    record("sluiced_json", RunSluiced(env, backlog, false, args.batch, run));
    record("sluiced_flatbuffers", RunSluiced(env, backlog, true, args.batch, run));
    record("paho_c_publish", RunPahoBaseline(env, run));
    record("mosquitto_bridge", RunBridgeBaseline(env, run));
  }
  a.Stop();

  const auto& bridge = results["mosquitto_bridge"];
  const double bridge_eps = MedianOf(bridge, [](const DrainFigure& f) { return f.events_per_s(); });
  const double json_eps =
      MedianOf(results["sluiced_json"], [](const DrainFigure& f) { return f.events_per_s(); });
  const double fb_eps =
      MedianOf(results["sluiced_flatbuffers"], [](const DrainFigure& f) { return f.events_per_s(); });
  char note[160];
  {
    JsonLine j("drain", "sluiced_json");
    j.Int("max_inflight", static_cast<int64_t>(env.window)).Int("qos", 1)
        .Num("ratio_to_bridge", bridge_eps > 0 ? json_eps / bridge_eps : 0);
    std::snprintf(note, sizeof(note), "%.2fx the bridge (target >= 1)", bridge_eps > 0 ? json_eps / bridge_eps : 0);
    Report("sluiced_json", results["sluiced_json"], "sluiced", note, &j);
  }
  {
    JsonLine j("drain", "sluiced_flatbuffers");
    j.Int("batch_max_events", static_cast<int64_t>(args.batch)).Int("max_inflight", static_cast<int64_t>(env.window)).Int("qos", 1);
    std::snprintf(note, sizeof(note), "target >= 500000 ev/s: %s", fb_eps >= 500000 ? "met" : "MISSED");
    Report("sluiced_flatbuffers", results["sluiced_flatbuffers"], "sluiced", note, &j);
  }
  {
    JsonLine j("drain", "paho_c_publish");
    j.Int("window", static_cast<int64_t>(env.window)).Int("payload_bytes", static_cast<int64_t>(env.json_size)).Int("qos", 1)
        .Num("publisher_seconds", MedianOf(results["paho_c_publish"], [](const DrainFigure& f) { return f.extra_s; }));
    Report("paho_c_publish", results["paho_c_publish"], "paho-c publisher process", "", &j);
  }
  {
    JsonLine j("drain", "mosquitto_bridge");
    j.Int("autosave_interval", env.bridge_autosave).Int("qos", 1)
        .Bool("reduced_n", env.bridge_n != env.n)
        .Num("load_seconds", MedianOf(bridge, [](const DrainFigure& f) { return f.extra_s; }))
        .Int("loaded_rss_kib", bridge.empty() ? 0 : bridge[0].extra_kib);
    Report("mosquitto_bridge", bridge, "mosquitto B (bridge)",
           env.bridge_n != env.n ? "smaller N: " + std::to_string(env.bridge_n) : "", &j);
  }
  int64_t rss = 0;
  for (const char* k : {"sluiced_json", "sluiced_flatbuffers"}) {
    for (const auto& f : results[k]) rss = std::max(rss, f.drainer_peak_rss_kib);
  }
  JsonLine("drain", "targets")
      .Num("json_vs_bridge", bridge_eps > 0 ? json_eps / bridge_eps : 0)
      .Bool("json_ge_bridge", json_eps >= bridge_eps)
      .Num("flatbuffers_events_per_s", fb_eps)
      .Bool("flatbuffers_ge_500k", fb_eps >= 500000)
      .Int("sluiced_peak_rss_kib", rss)
      .Bool("rss_le_10mib", rss <= 10 * 1024)
      .Print();
  std::snprintf(note, sizeof(note), "target <= 10 MiB: %s", rss <= 10 * 1024 ? "met" : "MISSED");
  AddSummary({"drain", "sluiced_peak_rss", std::to_string(rss / 1024) + " MiB", note});
  return rc;
}

}  // namespace bench
}  // namespace sluice
