// Every number, duration and size in the config is range-checked at
// FILE:LINE:COL (what passes --check must work at run time), and no config
// error echoes a credential.
#include <catch2/catch.hpp>

#include <string>

#include "agent/config/config.h"

using namespace sluice;

namespace {

const std::string kAgent = "[agent]\nid = \"a\"\n";
const std::string kUp = kAgent + "[[upstream]]\nurl = \"mqtt://127.0.0.1:1883\"\n";

std::string ErrorOf(const std::string& text) {
  auto c = ParseConfig(text, "t.toml");
  if (c.ok()) return "ok";
  return c.status().message();
}

}  // namespace

TEST_CASE("config: durations, sizes and counts outside what the code can honour are errors") {
  struct Case {
    std::string text;
    const char* expect;
  };
  const Case cases[] = {
      // MQTT's keepalive is 16-bit seconds: 19h (68,400 s) used to pass.
      {kUp + "keepalive = \"19h\"\n",
       "t.toml:5:13: [[upstream]] #1: \"keepalive\" must be between 1s and 65535s (the MQTT "
       "limit), not 19h"},
      {kUp + "keepalive = \"500ms\"\n", "\"keepalive\" must be between 1s and 65535s"},
      {kUp + "keepalive = \"1500ms\"\n", "t.toml:5:13: [[upstream]] #1: \"keepalive\" must be whole seconds"},
      // libmosquitto refuses a keepalive under 5 s: the uplink never connected.
      {kUp + "keepalive = \"2s\"\n",
       "t.toml:5:13: [[upstream]] #1: \"keepalive\" must be at least 5s with client = \"mosquitto\""},
      {kUp + "connect_timeout = \"30d\"\n", "t.toml:5:19: [[upstream]] #1: \"connect_timeout\" must be between 100ms and 1h"},
      {kUp + "connect_timeout = \"1ms\"\n", "\"connect_timeout\" must be between 100ms and 1h"},
      {kUp + "reconnect_min = \"2h\"\n", "\"reconnect_min\" must be between 10ms and 1h"},
      {kUp + "reconnect_max = \"100d\"\n", "\"reconnect_max\" must be between 10ms and 1h"},
      {kUp + "reconnect_min = \"10s\"\nreconnect_max = \"5s\"\n",
       "t.toml:6:17: [[upstream]] #1: \"reconnect_max\" must not be below \"reconnect_min\""},
      {kUp + "qos = 2\n", "\"qos\" must be between 0 and 1"},
      {kUp + "batch_max_events = 0\n", "\"batch_max_events\" must be between 1 and 65536"},
      {kUp + "batch_max_events = 100000\n", "\"batch_max_events\" must be between 1 and 65536"},
      {kUp + "max_inflight = 65536\n", "\"max_inflight\" must be between 1 and 65535"},
      {kUp + "max_inflight = -1\n", "\"max_inflight\" must be between 1 and 65535"},
      {kUp + "client_id = \"\"\n", "\"client_id\" must be 1..65535 bytes"},
      {kUp + "topic = \"s/{agent}/#\"\n", "t.toml:5:9: [[upstream]] #1: \"topic\" must not hold the MQTT wildcards"},
      {kUp + "alert_topic = \"\"\n", "\"alert_topic\" must be 1..60000 bytes"},
      {kUp + "password_file = \"/p\"\n", "\"password_file\" needs a path and \"username\""},
      {kUp + "username = \"u\"\npassword_file = \"\"\n", "\"password_file\" needs a path"},
      {kAgent + "shutdown_grace = \"2d\"\n", "t.toml:3:18: [agent]: \"shutdown_grace\" must be between 0us and 1h"},
      {kAgent + "data_dir = \"\"\n", "t.toml:3:12: [agent]: \"data_dir\" must not be empty"},
      {kAgent + "[buffer]\ncommit_interval = \"1m\"\n",
       "t.toml:4:19: [buffer]: \"commit_interval\" must be between 0us and 10s"},
      {kAgent + "[buffer]\nmax_bytes = \"2TiB\"\n", "t.toml:4:13: [buffer]: \"max_bytes\" must be between 64KiB and 1TiB, not 2TiB"},
      {kAgent + "[buffer]\nmax_bytes = 1000\n", "\"max_bytes\" must be between 64KiB and 1TiB, not 1000B"},
      {kAgent + "[buffer]\nmax_events = 0\n", "\"max_events\" must be between 1"},
      {kAgent + "[[sensor]]\nname = \"s\"\ndriver = \"simulated\"\ninterval = \"30d\"\n",
       "t.toml:6:12: [[sensor]] #1: \"interval\" must be between 1ms and 7d"},
      {kAgent + "[[sensor]]\nname = \"s\"\ndriver = \"simulated\"\ninterval = \"10us\"\n",
       "\"interval\" must be between 1ms and 7d"},
      {kAgent + "[rules]\nlate_tolerance = \"2d\"\n", "\"late_tolerance\" must be between 0us and 1d"},
      {kAgent + "[rules]\nmax_future = \"30d\"\n", "\"max_future\" must be between 0us and 7d"},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    std::string err = ErrorOf(c.text);
    INFO(err);
    CHECK(err.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("config: the limits themselves are accepted") {
  auto c = ParseConfig(kUp + "keepalive = \"65535s\"\nconnect_timeout = \"1h\"\n"
                              "reconnect_min = \"1h\"\nreconnect_max = \"1h\"\n"
                              "batch_max_events = 65536\nmax_inflight = 65535\nqos = 0\n"
                              "[buffer]\nmax_bytes = \"1TiB\"\ncommit_interval = \"10s\"\n"
                              "[rules]\nlate_tolerance = \"1d\"\nmax_future = \"7d\"\n",
                       "t.toml");
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  CHECK(c->upstreams[0].keepalive_s == 65535);
  CHECK(c->buffer.max_bytes == 1ull << 40);
}

TEST_CASE("config: a url with credentials is redacted in every error and says where they go") {
  for (const std::string url : {"mqtt://alice:secretpw@127.0.0.1:1883", "mqtt://alice:secretpw@host",
                                "http://alice:secretpw@127.0.0.1:1883/x", "alice:secretpw@host:1883",
                                "mqtts://alice:secr@tpw@host:8883", "mqtt://alice@host:1883"}) {
    std::string err = ErrorOf(kAgent + "[[upstream]]\nurl = \"" + url + "\"\n");
    INFO(err);
    CHECK(err.find("t.toml:4:7: [[upstream]] #1: \"url\"") == 0);
    CHECK(err.find("secretpw") == std::string::npos);
    CHECK(err.find("secr") == std::string::npos);
    CHECK(err.find("alice") == std::string::npos);
    CHECK(err.find("***@") != std::string::npos);
  }
  std::string err = ErrorOf(kAgent + "[[upstream]]\nurl = \"mqtt://alice:secretpw@127.0.0.1:1883\"\n");
  CHECK(err == "t.toml:4:7: [[upstream]] #1: \"url\" must not hold credentials "
               "(\"mqtt://***@127.0.0.1:1883\"): the user name belongs in \"username\" and the "
               "password in the file named by \"password_file\"");
}
