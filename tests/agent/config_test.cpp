#include <catch2/catch.hpp>

#include "agent/config/config.h"
#include "common/build_options.h"

using namespace sluice;

namespace {
const char* kFull = R"(
[agent]
id = "gw-001"
data_dir = "/tmp/sluice-x"
control_socket = "/tmp/sluice-x/control.sock"
shutdown_grace = "5s"

[buffer]
max_events = 1_000_000
max_bytes  = "256MiB"
durability = "full"
commit_interval = "20ms"

[[sensor]]
name = "boiler.temp"
driver = "simulated"
interval = "1s"
unit = "C"
params = { shape = "sine", min = 20.0, max = 90.0, period = "10m", seed = 7 }

[[sensor]]
name = "ingest"
driver = "push"
params = { listen = "unix:///run/sluice/push.sock" }

[rules]
files = ["/etc/sluice/rules.d/*.toml"]
late_tolerance = "5s"
max_future = "1d"

[[upstream]]
name = "cloud"
url = "mqtts://broker.example.com:8883"
client_id = "gw-001"
topic = "sluice/{agent}/{sensor}"
alert_topic = "sluice/{agent}/alerts/{rule}"
status_topic = "sluice/{agent}/status"
qos = 1
format = "flatbuffers"
batch_max_events = 256
max_inflight = 256
username = "u"
password_file = "/etc/sluice/cloud.pass"
tls = { ca_file = "ca.pem", cert_file = "c.pem", key_file = "k.pem", verify = true }
)";

std::string ErrorOf(const std::string& text) {
  auto c = ParseConfig(text, "t.toml");
  REQUIRE_FALSE(c.ok());
  return c.status().message();
}
}  // namespace

TEST_CASE("the contract's example config parses with every value") {
  auto c = ParseConfig(kFull, "t.toml");
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  CHECK(c->agent.id == "gw-001");
  CHECK(c->agent.shutdown_grace_us == 5000000);
  CHECK(c->buffer.max_events == 1000000);
  CHECK(c->buffer.max_bytes == 256ull << 20);
  CHECK(c->buffer.durability == Durability::kFull);
  CHECK(c->buffer.commit_interval_us == 20000);
  REQUIRE(c->sensors.size() == 2);
  CHECK(c->sensors[0].spec.name == "boiler.temp");
  CHECK(c->sensors[0].spec.driver == "simulated");
  CHECK(c->sensors[0].spec.unit == "C");
  REQUIRE(c->sensors[0].params != nullptr);
  CHECK(c->sensors[0].line == 14);
  CHECK(c->rules.files.size() == 1);
  CHECK(c->rules.max_future_us == 86400000000);
  REQUIRE(c->upstreams.size() == 1);
  const UplinkOptions& u = c->upstreams[0];
  CHECK(u.name == "cloud");
  CHECK(u.tls);
  CHECK(u.format == PayloadFormat::kFlatbuffers);
  CHECK(u.tls_ca_file == "ca.pem");
  CHECK(u.password_file == "/etc/sluice/cloud.pass");
}

TEST_CASE("defaults apply to a minimal config") {
  auto c = ParseConfig("[agent]\nid = \"a\"\n[[upstream]]\nurl = \"mqtt://127.0.0.1:1883\"\n", "t.toml");
  REQUIRE(c.ok());
  CHECK(c->agent.data_dir == "/var/lib/sluice");
  CHECK(c->buffer.max_events == 1000000);
  CHECK(c->buffer.durability == Durability::kNormal);
  CHECK(c->upstreams[0].client_id == "a");
  CHECK(c->upstreams[0].name == "upstream");
  CHECK(c->upstreams[0].qos == 1);
  CHECK(c->upstreams[0].max_inflight == 256);
  CHECK_FALSE(c->upstreams[0].tls);
}

TEST_CASE("config errors name FILE:LINE:COL and what is wrong") {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {"[agent]\nid = \"a\"\nbogus = 1\n", "t.toml:3:1: [agent]: unknown key \"bogus\""},
      {"[agent]\nid = 5\n", "t.toml:2:6: [agent]: \"id\" must be a string, not an integer"},
      {"[agent]\nid = \"bad id\"\n", "t.toml:2:6: [agent]: \"id\" must match"},
      {"[agent]\n", "t.toml:1:1: [agent]: missing required key \"id\""},
      {"x = 1\n", "t.toml: missing [agent] table"},
      {"[agent]\nid = \"a\"\n[buffer]\ncommit_interval = \"20\"\n", "t.toml:4:19: [buffer]: \"commit_interval\": bad duration"},
      {"[agent]\nid = \"a\"\n[buffer]\nmax_bytes = \"1.5GiB\"\n", "t.toml:4:13: [buffer]: \"max_bytes\": bad size"},
      {"[agent]\nid = \"a\"\n[buffer]\ndurability = \"fast\"\n", "t.toml:4:14: [buffer]: \"durability\" must be off, normal or full"},
      {"[agent]\nid = \"a\"\n[buffer]\nmax_events = 0\n", "\"max_events\" must be between 1"},
      {"[agent]\nid = \"a\"\n[[sensor]]\ndriver = \"simulated\"\n", "t.toml:3:1: [[sensor]] #1: missing required key \"name\""},
      {"[agent]\nid = \"a\"\n[[sensor]]\nname = \"s\"\ndriver = \"simulated\"\n[[sensor]]\nname = \"s\"\ndriver = \"push\"\n",
       "t.toml:7:8: [[sensor]] #2: duplicate sensor name \"s\""},
      {"[agent]\nid = \"a\"\n[[upstream]]\nurl = \"http://x\"\n", "t.toml:4:7: [[upstream]] #1: \"url\" must look like"},
      {"[agent]\nid = \"a\"\n[[upstream]]\nurl = \"mqtt://x\"\nclient = \"hive\"\n",
       "t.toml:5:10: [[upstream]] #1: \"client\" must be mosquitto or paho, not \"hive\""},
      {"[agent]\nid = \"a\"\n[[upstream]]\nurl = \"mqtt://x\"\nclient = 1\n",
       "t.toml:5:10: [[upstream]] #1: \"client\" must be a string"},
      {"[agent]\nid = \"a\"\n[[upstream]]\nurl = \"mqtt://x:1\"\nqos = 2\n", "\"qos\" must be between 0 and 1"},
      {"[agent]\nid = \"a\"\n[[upstream]]\nurl = \"mqtt://x:1\"\ntopic = \"a/{nope}\"\n", "unknown placeholder {nope}"},
      {"[agent]\nid = \"a\"\n[[upstream]]\nurl = \"mqtt://x:1\"\ntls = { verify = \"yes\" }\n", "\"verify\" must be a boolean"},
      {"sensor = 1\n[agent]\nid = \"a\"\n", "\"sensor\" must be written as [[sensor]] tables"},
      {"[agent\nid = \"a\"\n", "t.toml:1:"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    std::string err = ErrorOf(c.text);
    INFO(err);
    CHECK(err.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("upstream client picks the MQTT library; libmosquitto by default") {
  const std::string base = "[agent]\nid = \"a\"\n[[upstream]]\nurl = \"mqtt://127.0.0.1\"\n";
  auto def = ParseConfig(base, "t.toml");
  REQUIRE(def.ok());
  CHECK(def->upstreams[0].client == MqttClient::kMosquitto);
  auto paho = ParseConfig(base + "client = \"paho\"\n", "t.toml");
#if SLUICE_TRANSPORT_PAHO
  REQUIRE(paho.ok());
  CHECK(paho->upstreams[0].client == MqttClient::kPaho);
#else
  REQUIRE_FALSE(paho.ok());
  CHECK_THAT(paho.status().message(),
             Catch::StartsWith("t.toml:5:10: [[upstream]] #1: \"client\" paho was left out of "
                               "this build (built with SLUICE_TRANSPORT_PAHO=OFF"));
#endif
  auto mosq = ParseConfig(base + "client = \"mosquitto\"\n", "t.toml");
  REQUIRE(mosq.ok());
  CHECK(mosq->upstreams[0].client == MqttClient::kMosquitto);
}

TEST_CASE("every error of a file is reported, not just the first") {
  std::string err = ErrorOf("[agent]\nid = 1\nfoo = 2\n[buffer]\nbar = 3\n");
  CHECK(err.find("t.toml:2:6") != std::string::npos);
  CHECK(err.find("t.toml:3:1") != std::string::npos);
  CHECK(err.find("t.toml:5:1") != std::string::npos);
}

TEST_CASE("a missing config file is a clear error") {
  auto c = LoadConfig("/nonexistent/sluice.toml");
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message().find("/nonexistent/sluice.toml: cannot read") == 0);
}

TEST_CASE("config: agent.metrics_listen", "[config]") {
  auto parse = [](const std::string& v) {
    return ParseConfig("[agent]\nid = \"x\"\nmetrics_listen = \"" + v + "\"\n", "t.toml");
  };
  auto c = parse("127.0.0.1:9464");
  REQUIRE(c.ok());
  CHECK(c->agent.metrics_host == "127.0.0.1");
  CHECK(c->agent.metrics_port == 9464);
  CHECK(c->agent.metrics_loopback);
  c = parse(":9100");
  REQUIRE(c.ok());
  CHECK(c->agent.metrics_host == "127.0.0.1");
  CHECK(c->agent.metrics_port == 9100);
  c = parse("[::1]:9464");
  REQUIRE(c.ok());
  CHECK(c->agent.metrics_host == "::1");
  CHECK(c->agent.metrics_loopback);
  c = parse("0.0.0.0:9464");
  REQUIRE(c.ok());
  CHECK_FALSE(c->agent.metrics_loopback);
  c = ParseConfig("[agent]\nid = \"x\"\n", "t.toml");
  REQUIRE(c.ok());
  CHECK(c->agent.metrics_listen.empty());
  CHECK(ErrorOf("[agent]\nid = \"x\"\nmetrics_listen = \"localhost:9464\"\n") ==
        "t.toml:3:18: [agent]: \"metrics_listen\" \"localhost\" is not a numeric IP address");
  CHECK(ErrorOf("[agent]\nid = \"x\"\nmetrics_listen = \"127.0.0.1:0\"\n") ==
        "t.toml:3:18: [agent]: \"metrics_listen\" the port must be a number in 1..65535");
  CHECK(ErrorOf("[agent]\nid = \"x\"\nmetrics_listen = \"9464\"\n").find(
            "must look like HOST:PORT") != std::string::npos);
  CHECK(ErrorOf("[agent]\nid = \"x\"\nmetrics_listen = \"::1:9464\"\n").find(
            "in brackets") != std::string::npos);
  CHECK(ErrorOf("[agent]\nid = \"x\"\nmetrics_listen = 9464\n").find(
            "\"metrics_listen\" must be a string") != std::string::npos);
}
