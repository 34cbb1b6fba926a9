// `sluice status` and `sluice metrics` against a real sluiced (real
// Mosquitto, simulated and push sensors, a rule that fires): --json checked
// field by field, the human layout, Prometheus text parsed line by line,
// HTTP /metrics, hostile control clients, exit codes, no secrets anywhere.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "common/build_options.h"
#include "common/json_parse.h"
#include "tests/integration/cli_live_util.h"
#include "tests/support/mosquitto_broker.h"

namespace sluice {
namespace testing {
namespace {

constexpr const char* kSecret = "pw-S3CRET-xyz";

// Every sample line: name{labels} value. Checks the exposition rules and
// returns family -> type.
std::map<std::string, std::string> CheckPrometheus(const std::string& text,
                                                   std::map<std::string, double>* samples) {
  static const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
  static const std::regex type(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$)");
  static const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? (\S+)$)");
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  std::string current;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    INFO(line);
    std::smatch m;
    if (std::regex_match(line, m, help)) {
      CHECK(helped.insert(m[1]).second);  // one HELP per family
      current = m[1];
    } else if (std::regex_match(line, m, type)) {
      CHECK(m[1] == current);
      CHECK(types.emplace(m[1], m[2]).second);
      if (m[2] == "counter") CHECK(current.size() > 6);
      if (m[2] == "counter") CHECK(current.substr(current.size() - 6) == "_total");
    } else {
      REQUIRE(std::regex_match(line, m, sample));
      CHECK(m[1] == current);  // samples follow their family's TYPE line
      std::string v = m[5];
      char* end = nullptr;
      double d = std::strtod(v.c_str(), &end);
      CHECK((*end == '\0' || v == "NaN" || v == "+Inf"));
      std::string key = line.substr(0, line.rfind(' '));
      (*samples)[key] = d;
    }
  }
  return types;
}

TEST_CASE("live commands against a running sluiced", "[integration]") {
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  LiveSetup s(broker.url());
  bool started = s.d.Start(&err);
  INFO(err);
  REQUIRE(started);

  // Real data: readings committed and acknowledged, the rule fired.
  JsonValue st;
  REQUIRE(WaitUntil(
      [&] {
        if (!s.Status(&st)) return false;
        const JsonValue* acked = st.AtPath("$.upstreams[0].acked_seq");
        const JsonValue* readings = st.AtPath("$.sensors[0].readings");
        const JsonValue* holds = st.AtPath("$.buffer.holds_s");  // once a rate is known
        return acked && acked->AsNumber() >= 20 && readings && readings->AsNumber() >= 20 &&
               st.AtPath("$.alerts[0].rule") != nullptr && holds && holds->is_number();
      },
      20000000, 100000));

  SECTION("status --json, field by field") {
    auto num = [&](const char* path) {
      const JsonValue* v = st.AtPath(path);
      INFO(path);
      REQUIRE(v != nullptr);
      REQUIRE(v->is_number());
      return v->AsNumber();
    };
    auto str = [&](const char* path) {
      const JsonValue* v = st.AtPath(path);
      INFO(path);
      REQUIRE(v != nullptr);
      REQUIRE(v->is_string());
      return v->AsString();
    };
    CHECK(st.Find("ok")->AsBool());
    CHECK(str("$.agent.id") == kAgent);
    CHECK(str("$.agent.version") == SLUICE_VERSION);
    CHECK(num("$.agent.pid") == s.d.pid());
    CHECK(num("$.agent.uptime_s") > 0);
    CHECK(st.AtPath("$.agent.healthy")->AsBool());
    CHECK(num("$.buffer.writer_idle_s") >= 0);
    CHECK(num("$.buffer.writer_idle_s") < 30);
    // What the ring costs: files on disk, bytes written, how long it lasts.
    CHECK(num("$.buffer.file_bytes") > 0);
    CHECK(num("$.buffer.storage_bytes_written") >= 0);
    CHECK(num("$.buffer.bytes_per_reading_at_rest") ==
          Approx(num("$.buffer.file_bytes") / num("$.buffer.events")));
    CHECK(num("$.buffer.holds_s") > 0);
    CHECK(num("$.buffer.holds_s") <= num("$.buffer.max_events") / num("$.buffer.ingest_rate") + 1);
    CHECK(num("$.agent.now_us") >= num("$.agent.started_us"));
    // Sensors: the simulated one, and the push listener.
    CHECK(st.AtPath("$.sensors")->items().size() == 1);
    CHECK(str("$.sensors[0].name") == "boiler.temp");
    CHECK(str("$.sensors[0].driver") == "simulated");
    CHECK(str("$.sensors[0].unit") == "C");
    CHECK(str("$.sensors[0].state") == "ok");
    CHECK(num("$.sensors[0].value") >= 20);
    CHECK(num("$.sensors[0].value") <= 90);
    CHECK(num("$.sensors[0].interval_s") == Approx(0.05));
    CHECK(num("$.sensors[0].reads") >= 20);
    CHECK(num("$.sensors[0].errors") == 0);
    CHECK(num("$.sensors[0].readings") >= 20);
    CHECK(num("$.sensors[0].value_ts_us") <= num("$.agent.now_us"));
    CHECK(str("$.listeners[0].name") == "ingest");
    CHECK(str("$.listeners[0].listen") == "unix://" + s.push_sock);
    CHECK(num("$.listeners[0].lines_ok") == 0);
    // Buffer.
    CHECK(num("$.buffer.events") >= 20);
    CHECK(num("$.buffer.first_seq") == 1);
    CHECK(num("$.buffer.last_seq") >= num("$.upstreams[0].acked_seq"));
    CHECK(num("$.buffer.max_events") == 100000);
    CHECK(num("$.buffer.max_bytes") == 64 << 20);
    CHECK(num("$.buffer.file_bytes") > 0);
    CHECK(num("$.buffer.bytes") > 0);
    CHECK(str("$.buffer.durability") == "normal");
    CHECK(num("$.buffer.commits") > 0);
    CHECK(num("$.buffer.committed_events") >= num("$.buffer.events"));
    CHECK(num("$.buffer.committed_bytes") >= num("$.buffer.bytes"));
    CHECK(num("$.buffer.last_commit_us") > num("$.agent.started_us"));
    CHECK(num("$.buffer.first_ts_us") <= num("$.buffer.last_ts_us"));
    CHECK(num("$.buffer.evicted.total") == 0);
    CHECK(num("$.buffer.evicted.limit") == 0);
    CHECK(num("$.buffer.evicted.full_disk") == 0);
    CHECK(num("$.buffer.dropped") == 0);
    // Upstream: connected, password not shown.
    CHECK(str("$.upstreams[0].name") == kUpstream);
    CHECK(str("$.upstreams[0].url") == broker.url());
    CHECK(st.AtPath("$.upstreams[0].connected")->AsBool());
    CHECK(num("$.upstreams[0].since_us") >= num("$.agent.started_us"));
    CHECK(num("$.upstreams[0].for_s") >= 0);
    CHECK(num("$.upstreams[0].backlog") ==
          num("$.buffer.last_seq") - num("$.upstreams[0].acked_seq"));
    CHECK(num("$.upstreams[0].sent_events") >= num("$.upstreams[0].acked_events"));
    CHECK(num("$.upstreams[0].acked_events") >= 20);
    CHECK(num("$.upstreams[0].publishes") >= num("$.upstreams[0].sent_events"));
    CHECK(num("$.upstreams[0].reconnects") == 0);
    CHECK(num("$.upstreams[0].send_rate") >= 0);
    CHECK(num("$.upstreams[0].evicted_unsent") == 0);
    CHECK(str("$.upstreams[0].last_error").empty());
    CHECK(st.AtPath("$.upstreams[0].drain_eta_s") != nullptr);
    // Rules and the active alert.
    CHECK(st.AtPath("$.rules.enabled")->AsBool());
    CHECK(num("$.rules.loaded") == 2);
    CHECK(str("$.rules.files[0]") == s.rules_file);
    CHECK(num("$.rules.firing") == 1);
    CHECK(num("$.rules.fired") == 1);
    CHECK(num("$.rules.evaluations") > 0);
    CHECK(num("$.rules.late") == 0);
    CHECK(str("$.rules.list[0].name") == "always");
    CHECK(str("$.rules.list[0].state") == "firing");
    CHECK(str("$.rules.list[1].name") == "never");
    CHECK(str("$.rules.list[1].state") == "inactive");
    CHECK(st.AtPath("$.alerts")->items().size() == 1);
    CHECK(str("$.alerts[0].rule") == "always");
    CHECK(str("$.alerts[0].severity") == "critical");
    CHECK(num("$.alerts[0].value") >= 20);
    CHECK(num("$.alerts[0].since_us") > 0);
    CHECK(num("$.control.requests") >= 1);
  }

  SECTION("status, human layout in 80 columns") {
    RunResult r = RunCli({"--config", s.config, "status"}, s.dir.path());
    INFO(r.out << r.err);
    CHECK(ExitStatus(r.status) == 0);
    CHECK(r.out.find("sluiced it-gw  version " SLUICE_VERSION "  pid ") == 0);
    CHECK(r.out.find("\nboiler.temp          ok       ") != std::string::npos);
    CHECK(r.out.find("\npush ingest ") != std::string::npos);
    CHECK(r.out.find("\nBUFFER    ") != std::string::npos);
    CHECK(r.out.find("durability normal") != std::string::npos);
    CHECK(std::regex_search(r.out, std::regex("\n {10}[0-9,]+ B written, [0-9.]+ B at rest per "
                                              "reading; holds [^\n]+ at [0-9.,]+/s\n")));
    CHECK(r.out.find("\nUPSTREAM  cloud  " + broker.url() + "  connected for ") !=
          std::string::npos);
    CHECK(r.out.find("\nRULES     2 loaded (1 file), 1 firing") != std::string::npos);
    CHECK(r.out.find("\nALERT     always ") != std::string::npos);
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) CHECK(line.size() <= 80);
    CHECK(r.out.find('\x1b') == std::string::npos);  // no terminal codes in a pipe
  }

  SECTION("metrics: Prometheus text from the CLI and over HTTP") {
    RunResult r = RunCli({"--config", s.config, "metrics"}, s.dir.path());
    CHECK(ExitStatus(r.status) == 0);
    std::map<std::string, double> samples;
    auto types = CheckPrometheus(r.out, &samples);
    for (const char* name :
         {"sluice_sensor_readings_total", "sluice_buffer_committed_events_total",
          "sluice_buffer_evictions_total", "sluice_buffer_written_bytes_total",
          "sluice_upstream_publishes_total", "sluice_upstream_acked_events_total",
          "sluice_upstream_reconnects_total", "sluice_rule_evaluations_total",
          "sluice_alerts_total", "sluice_rules_readings_total", "sluice_push_lines_total"}) {
      INFO(name);
      CHECK(types[name] == "counter");
    }
    for (const char* name :
         {"sluice_upstream_backlog_events", "sluice_buffer_events", "sluice_upstream_connected",
          "sluice_rules_firing", "sluice_uptime_seconds"}) {
      INFO(name);
      CHECK(types[name] == "gauge");
    }
    CHECK(samples["sluice_upstream_connected{upstream=\"cloud\"}"] == 1);
    CHECK(samples["sluice_healthy"] == 1);
    CHECK(samples["sluice_sensor_readings_total{sensor=\"boiler.temp\"}"] >= 20);
    CHECK(samples["sluice_alerts_total{state=\"firing\"}"] == 1);
    CHECK(samples["sluice_rule_firing{rule=\"always\",severity=\"critical\"}"] == 1);
    CHECK(samples["sluice_rules_readings_total{result=\"late\"}"] == 0);
    CHECK(samples.count("sluice_buffer_evictions_total{reason=\"full_disk\"}") == 1);
    CHECK(samples["sluice_info{agent=\"it-gw\",version=\"" SLUICE_VERSION "\"}"] == 1);

    std::string http = HttpGet(s.metrics_port, "/metrics");
    REQUIRE(http.find("HTTP/1.0 200 OK\r\n") == 0);
    std::string body = http.substr(http.find("\r\n\r\n") + 4);
    std::map<std::string, double> http_samples;
    CHECK(CheckPrometheus(body, &http_samples) == types);
    CHECK(HttpGet(s.metrics_port, "/").find("HTTP/1.0 404 ") == 0);
    CHECK(secrets_absent(body));
    CHECK(secrets_absent(r.out));
  }

  SECTION("hostile clients do not stop anyone else") {
    // One sends requests and never reads, one sends garbage, one an
    // oversized line; status keeps answering.
    int stuck = ConnectUnix(s.sock);
    REQUIRE(stuck >= 0);
    std::string many;
    for (int i = 0; i < 200; ++i) many += "{\"cmd\":\"status\"}\n";
    REQUIRE(SendAll(stuck, many));
    int garbage = ConnectUnix(s.sock);
    REQUIRE(SendAll(garbage, "\x01\x02 not json at all\n"));
    CHECK(ReadLine(garbage).find("{\"ok\":false,\"error\":\"bad request: ") == 0);
    int big = ConnectUnix(s.sock);
    std::string line(1 << 20, '{');
    SendAll(big, line);  // may fail once the daemon closes it
    CHECK(ReadLine(big) == "{\"ok\":false,\"error\":\"request longer than 65536 bytes\"}");
    for (int i = 0; i < 3; ++i) {
      RunResult r = RunCli({"--socket", s.sock, "status", "--json"}, s.dir.path());
      CHECK(ExitStatus(r.status) == 0);
    }
    REQUIRE(s.Status(&st));
    CHECK(st.AtPath("$.control.bad_requests")->AsNumber() >= 1);
    CHECK(st.AtPath("$.control.oversized")->AsNumber() >= 1);
    ::close(stuck);
    ::close(garbage);
    ::close(big);
    CHECK(s.d.Alive());
  }

  SECTION("socket permissions, usage errors, stopped daemon") {
    struct stat sb;
    REQUIRE(::lstat(s.sock.c_str(), &sb) == 0);
    CHECK(S_ISSOCK(sb.st_mode));
    CHECK((sb.st_mode & 07777) == 0660);
    RunResult r = RunCli({"--config", s.config, "status", "--bogus"}, s.dir.path());
    CHECK(ExitStatus(r.status) == 2);
    CHECK(r.err.find("unknown option \"--bogus\"") != std::string::npos);
    CHECK(r.err.find("usage: sluice") != std::string::npos);
    CHECK(ExitStatus(RunCli({"--config", s.config, "metrics", "x"}, s.dir.path()).status) == 2);
    r = RunCli({"status", "--help"}, s.dir.path());
    CHECK(ExitStatus(r.status) == 0);
    CHECK(r.out.find("--watch") != std::string::npos);

    CHECK(ExitStatus(s.d.Terminate()) == 0);
    CHECK(::lstat(s.sock.c_str(), &sb) != 0);  // removed on a clean exit
    r = RunCli({"--config", s.config, "status"}, s.dir.path());
    CHECK(ExitStatus(r.status) == 1);
    CHECK(r.err == "sluice: sluiced is not running (no control socket at " + s.sock + ")\n");
    CHECK(ExitStatus(RunCli({"--config", s.config, "metrics"}, s.dir.path()).status) == 1);
    CHECK(ExitStatus(
              RunCli({"--config", s.dir.Join("missing.toml"), "status"}, s.dir.path()).status) ==
          2);
  }

  // No password anywhere: status, metrics, the log.
  RunResult all = RunCli({"--socket", s.sock, "status", "--json"}, s.dir.path());
  CHECK(secrets_absent(all.out));
  CHECK(secrets_absent(s.d.Log()));
  (void)kSecret;
}

#if SLUICE_DRIVER_MQTT  // the mqtt driver is a build option
TEST_CASE("status shows an mqtt source beside the polled sensors", "[integration]") {
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  LiveOptions o;
  o.sensor_interval = "";
  o.extra_sensors = "[[sensor]]\nname = \"lan.temp\"\ndriver = \"mqtt\"\nunit = \"C\"\n"
                    "params = { url = \"" + broker.url() + "\", topic = \"lan/+/temp\", "
                    "json_path = \"$.t\", scale = 2 }\n";
  LiveSetup s(broker.url(), o);
  bool started = s.d.Start(&err);
  INFO(err << s.d.Log());
  REQUIRE(started);
  JsonValue st;
  auto sensor = [&]() -> const JsonValue* {
    const JsonValue* list = st.AtPath("$.sensors");
    if (list == nullptr) return nullptr;
    for (const JsonValue& v : list->items()) {
      if (v.Find("name") && v.Find("name")->AsString() == "lan.temp") return &v;
    }
    return nullptr;
  };
  // Publish until the source is subscribed and has taken a reading.
  REQUIRE(WaitUntil(
      [&] {
        RunProgram("/usr/bin/mosquitto_pub",
                   {"-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-t", "lan/a/temp",
                    "-m", "{\"t\": 10.75}"},
                   s.dir.path(), 5000000);
        const JsonValue* v = s.Status(&st) ? sensor() : nullptr;
        return v && v->Find("value") && v->Find("value")->AsNumber() == 21.5;
      },
      20000000, 200000));
  const JsonValue* v = sensor();
  REQUIRE(v != nullptr);
  CHECK(v->Find("driver")->AsString() == "mqtt");
  CHECK(v->Find("state")->AsString() == "ok");
  CHECK(v->Find("unit")->AsString() == "C");
  CHECK(v->Find("readings")->AsNumber() >= 1);
  // Payloads without the field are errors: consecutive failures, and the
  // sensor is failing until a good payload comes.
  for (int i = 0; i < 3; ++i) {
    RunProgram("/usr/bin/mosquitto_pub",
               {"-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-t", "lan/b/temp",
                "-m", "{\"x\": 1}"},
               s.dir.path(), 5000000);
  }
  REQUIRE(WaitUntil(
      [&] {
        const JsonValue* w = s.Status(&st) ? sensor() : nullptr;
        return w && w->Find("errors") && w->Find("errors")->AsNumber() == 3;
      },
      10000000, 100000));
  v = sensor();
  REQUIRE(v != nullptr);
  CHECK(v->Find("state")->AsString() == "failing");
  CHECK(v->Find("consecutive_failures")->AsNumber() == 3);
  CHECK(v->Find("last_sample_ts_us")->is_number());
  RunProgram("/usr/bin/mosquitto_pub",
             {"-h", "127.0.0.1", "-p", std::to_string(broker.port()), "-t", "lan/a/temp", "-m",
              "{\"t\": 11}"},
             s.dir.path(), 5000000);
  REQUIRE(WaitUntil(
      [&] {
        const JsonValue* w = s.Status(&st) ? sensor() : nullptr;
        return w && w->Find("value") && w->Find("value")->AsNumber() == 22.0;
      },
      10000000, 100000));
  v = sensor();
  REQUIRE(v != nullptr);
  CHECK(v->Find("state")->AsString() == "ok");
  CHECK(v->Find("consecutive_failures")->AsNumber() == 0);
  // The broker goes away: the source shows failing with its error.
  broker.Stop();
  REQUIRE(WaitUntil(
      [&] {
        const JsonValue* w = s.Status(&st) ? sensor() : nullptr;
        return w && w->Find("state") && w->Find("state")->AsString() == "failing";
      },
      10000000, 100000));
  CHECK(s.d.Terminate() == 0);
}
#endif

}  // namespace
}  // namespace testing
}  // namespace sluice
