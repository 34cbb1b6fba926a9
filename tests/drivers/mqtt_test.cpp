// `mqtt` driver against a real Mosquitto on a free loopback port; messages
// are published with mosquitto_pub (a separate, real client).
#include "drivers/mqtt.h"

#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "common/clock.h"
#include "make_driver.h"
#include "test_sink.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/process.h"
#include "tests/support/support.h"

using namespace sluice;
using sluice::testing::MosquittoBroker;
using sluice::testing::Quote;
using sluice::testing::WaitUntil;

namespace {

constexpr int64_t kWaitUs = 20 * 1000000ll;

// Runs a program to completion (bounded), requiring exit status 0.
void RunOk(std::vector<std::string> argv) {
  sluice::testing::Process p;
  sluice::testing::Process::Options o;
  o.argv = std::move(argv);
  std::string error;
  REQUIRE(p.Start(o, &error));
  std::optional<int> st = p.Wait(10000000);
  REQUIRE(st.has_value());
  REQUIRE(WIFEXITED(*st));
  REQUIRE(WEXITSTATUS(*st) == 0);
}

// Publishes one QoS 1 message with mosquitto_pub.
void Publish(int port, const std::string& topic, const std::string& payload) {
  std::vector<std::string> argv = {"/usr/bin/mosquitto_pub",
                                   "-h",
                                   "127.0.0.1",
                                   "-p",
                                   std::to_string(port),
                                   "-t",
                                   topic,
                                   "-q",
                                   "1"};
  if (payload.empty()) {
    argv.push_back("-n");
  } else {
    argv.push_back("-m");
    argv.push_back(payload);
  }
  RunOk(argv);
}

std::unique_ptr<MqttDriver> MakeMqtt(const std::string& params, Clock& clock,
                                     const std::string& name = "lan.temp") {
  StatusOr<std::unique_ptr<Driver>> d = sluice::testing::MakeDriver(clock, "mqtt", params, name, 0);
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  return std::unique_ptr<MqttDriver>(static_cast<MqttDriver*>(d->release()));
}

std::string Url(int port) { return "mqtt://127.0.0.1:" + std::to_string(port); }

void WaitSubscribed(const MqttDriver& d, uint64_t connects = 1) {
  INFO(d.stats().last_error);
  REQUIRE(
      WaitUntil([&] { return d.stats().subscribed && d.stats().connects >= connects; }, kWaitUs));
}

// A started broker and a driver subscribed to "t" at QoS 1 on it.
struct Lan {
  MosquittoBroker broker;
  FakeClock clock;
  TestSink sink;
  std::unique_ptr<MqttDriver> d;

  explicit Lan(const std::string& more_params) {
    std::string error;
    REQUIRE(broker.Start(&error));
    d = MakeMqtt(
        "{ url = \"" + Url(broker.port()) + "\", topic = \"t\", qos = 1" + more_params + " }",
        clock);
    REQUIRE(d->Start(sink).ok());
    WaitSubscribed(*d);
  }
  void Publish(const std::string& payload) { ::Publish(broker.port(), "t", payload); }
};

}  // namespace

TEST_CASE("mqtt payload parsing") {
  CHECK(*ParseMqttPayload("21.5", "") == 21.5);
  CHECK(*ParseMqttPayload(" -4\n", "") == -4);
  CHECK_THAT(ParseMqttPayload("abc", "").status().message(), Catch::Contains("not a number"));
  CHECK_THAT(ParseMqttPayload("", "").status().message(), Catch::Contains("not a number"));
  const std::string doc =
      R"({"sensors":{"temp":22.5,"ok":true,"s":"7.5","name":"x","n":null},"v":[1,2,3]})";
  CHECK(*ParseMqttPayload(doc, "$.sensors.temp") == 22.5);
  CHECK(*ParseMqttPayload(doc, "$.sensors.ok") == 1);
  CHECK(*ParseMqttPayload(doc, "$.sensors.s") == 7.5);
  CHECK(*ParseMqttPayload(doc, "$.v[2]") == 3);
  CHECK(*ParseMqttPayload(doc, "$['v'][0]") == 1);
  CHECK(*ParseMqttPayload("42", "$") == 42);
  CHECK_THAT(ParseMqttPayload(doc, "$.sensors.name").status().message(),
             Catch::Contains("$.sensors.name is a string, not a number"));
  CHECK_THAT(ParseMqttPayload(doc, "$.sensors.n").status().message(),
             Catch::Contains("is null, not a number"));
  CHECK_THAT(ParseMqttPayload(doc, "$.sensors").status().message(),
             Catch::Contains("is an object, not a number"));
  CHECK_THAT(ParseMqttPayload(doc, "$.sensors.hum").status().message(),
             Catch::Equals("no $.sensors.hum in the payload"));
  CHECK_THAT(ParseMqttPayload("{\"a\":", "$.a").status().message(),
             Catch::StartsWith("not JSON: line 1"));
  CHECK_FALSE(ParseMqttPayload(std::string(70000, '1'), "").ok());
}

TEST_CASE("json paths are checked") {
  for (const char* ok : {"$", "$.a", "$.a.b", "a.b", "$.a[0]", "$['a b'].c", "$[\"k\"][12].x"}) {
    INFO(ok);
    CHECK(ValidJsonPath(ok));
  }
  for (const char* bad : {"$.", "$..a", "$a", "$.a[", "$.a[x]", "$.a['b", "$.a]", ".a.", "$[]"}) {
    INFO(bad);
    CHECK_FALSE(ValidJsonPath(bad));
  }
}

TEST_CASE("mqtt config errors name FILE:LINE:COL") {
  FakeClock clock;
  auto err = [&](const std::string& params) {
    StatusOr<std::unique_ptr<Driver>> d =
        sluice::testing::MakeDriver(clock, "mqtt", params, "m", 0);
    REQUIRE_FALSE(d.ok());
    return d.status().message();
  };
  CHECK_THAT(err("{ topic = \"a\" }"), Catch::Contains("param \"url\" is required"));
  CHECK_THAT(err("{ url = \"mqtt://h\" }"), Catch::Contains("param \"topic\" is required"));
  CHECK_THAT(err("{ url = \"http://h\", topic = \"a\" }"),
             Catch::StartsWith("t.toml:2:18: sensor \"m\": param \"url\" must be mqtt://"));
  CHECK_THAT(err("{ url = \"mqtts://h:8883\", topic = \"a\" }"), Catch::Contains("TLS"));
  CHECK_THAT(err("{ url = \"mqtt://h:0\", topic = \"a\" }"), Catch::Contains("bad port"));
  CHECK_THAT(err("{ url = \"mqtt://h:x\", topic = \"a\" }"), Catch::Contains("bad port"));
  CHECK_THAT(err("{ url = \"mqtt://u@h\", topic = \"a\" }"), Catch::Contains("credentials"));
  // Credentials in the url are never echoed; they belong in username and
  // password_file.
  for (const char* url : {"mqtt://alice:secretpw@h:1883", "mqtt://alice:secretpw@h",
                          "mqtt://alice:secretpw@[::1]:x", "http://alice:secretpw@h"}) {
    std::string e = err(std::string("{ url = \"") + url + "\", topic = \"a\" }");
    INFO(e);
    CHECK(e.find("secretpw") == std::string::npos);
    CHECK(e.find("alice") == std::string::npos);
  }
  CHECK_THAT(err("{ url = \"mqtt://alice:secretpw@h:1883\", topic = \"a\" }"),
             Catch::Contains("\"mqtt://***@h:1883\"") && Catch::Contains("param \"username\"") &&
                 Catch::Contains("param \"password_file\""));
  CHECK_THAT(err("{ url = \"mqtt://h\", topic = \"a/#/b\" }"),
             Catch::Contains("valid topic filter"));
  CHECK_THAT(err("{ url = \"mqtt://h\", topic = \"a+\" }"), Catch::Contains("valid topic filter"));
  CHECK_THAT(err("{ url = \"mqtt://h\", topic = \"a\", qos = 3 }"),
             Catch::Contains("must be between 0 and 2"));
  CHECK_THAT(err("{ url = \"mqtt://h\", topic = \"a\", json_path = \"$.a[\" }"),
             Catch::Contains("simple path"));
  CHECK_THAT(err("{ url = \"mqtt://h\", topic = \"a\", password_file = \"/p\" }"),
             Catch::Contains("username"));
  CHECK_THAT(err("{ url = \"mqtt://h\", topic = \"a\", broker = \"x\" }"),
             Catch::Contains("unknown param \"broker\" for driver \"mqtt\""));

  auto d = MakeMqtt("{ url = \"tcp://[::1]:1884\", topic = \"a/+/c\" }", clock);
  CHECK_FALSE(d->polled());
}

TEST_CASE("mqtt numbers and JSON fields become readings", "[integration]") {
  MosquittoBroker broker;
  std::string error;
  REQUIRE(broker.Start(&error));
  FakeClock clock;
  TestSink sink;
  auto num =
      MakeMqtt("{ url = \"" + Url(broker.port()) + "\", topic = \"home/+/temp\", qos = 1 }", clock);
  auto json = MakeMqtt("{ url = \"" + Url(broker.port()) +
                           "\", topic = \"tele/dev1\", json_path = \"$.sensors.temp\", "
                           "scale = 2.0, offset = 2.0 }",
                       clock, "dev1.temp");
  REQUIRE(num->Start(sink).ok());
  REQUIRE(json->Start(sink).ok());
  WaitSubscribed(*num);
  WaitSubscribed(*json);

  Publish(broker.port(), "home/kitchen/temp", "21.5");
  Publish(broker.port(), "home/attic/temp", "-3");
  Publish(broker.port(), "home/attic/hum", "55");  // not this filter
  Publish(broker.port(), "tele/dev1", R"({"sensors":{"temp":10.25},"rssi":-60})");
  REQUIRE(sink.WaitFor(3) == 3);
  REQUIRE(WaitUntil([&] { return json->stats().readings == 1; }, kWaitUs));
  std::vector<Reading> r = sink.readings();
  std::sort(r.begin(), r.end(),
            [](const Reading& a, const Reading& b) { return a.value < b.value; });
  CHECK(r[0].sensor == "lan.temp");
  CHECK(r[0].value == -3);
  CHECK(r[0].ts_us == clock.NowWallUs());  // receive time
  CHECK(r[1].value == 21.5);
  CHECK(r[2].sensor == "dev1.temp");
  CHECK(r[2].value == 22.5);  // 10.25 * 2 + 2
  CHECK(num->stats().messages == 2);
  CHECK(num->stats().bad_payloads == 0);
  num->Stop();
  json->Stop();
  CHECK_FALSE(num->stats().connected);
}

TEST_CASE("mqtt bad payloads are counted, never readings", "[integration]") {
  Lan lan(", json_path = \"$.v\"");
  TestSink& sink = lan.sink;
  MqttDriver* d = lan.d.get();
  for (const char* bad : {"abc", "{\"v\":", "{\"w\":1}", "{\"v\":\"x\"}", "", "[1]"}) {
    lan.Publish(bad);
  }
  lan.Publish("{\"v\": 5}");
  REQUIRE(sink.WaitFor(1) == 1);
  CHECK(sink.readings()[0].value == 5);
  CHECK(d->stats().bad_payloads == 6);
  CHECK(d->stats().consecutive_bad == 0);  // the good one ended the run
  CHECK(d->stats().last_bad_ts_us > 0);
  CHECK(d->stats().messages == 7);
  REQUIRE(WaitUntil([&] { return d->stats().readings == 1; }, kWaitUs));
  CHECK_THAT(d->stats().last_error, Catch::Contains("bad payload on t: "));
  for (int i = 0; i < 8; ++i) lan.Publish("bad");
  REQUIRE(WaitUntil([&] { return d->stats().bad_payloads == 14; }, kWaitUs));
  CHECK(d->stats().consecutive_bad == 8);
}

TEST_CASE("mqtt applies deadband and heartbeat", "[integration]") {
  Lan lan(", deadband = 1.0, heartbeat = \"1m\"");
  TestSink& sink = lan.sink;
  MqttDriver* d = lan.d.get();
  for (const char* v : {"10", "10.5", "12", "11.5"}) lan.Publish(v);
  REQUIRE(WaitUntil([&] { return d->stats().messages == 4; }, kWaitUs));
  lan.clock.Advance(61000000);
  lan.Publish("11.6");  // within the deadband, but the heartbeat is due
  REQUIRE(sink.WaitFor(3) == 3);
  std::vector<Reading> r = sink.readings();
  CHECK(r[0].value == 10);
  CHECK(r[1].value == 12);
  CHECK(r[2].value == 11.6);
  REQUIRE(WaitUntil([&] { return d->stats().readings == 3; }, kWaitUs));
  CHECK(d->stats().suppressed == 2);
}

TEST_CASE("mqtt reconnects after a broker restart and resubscribes", "[integration]") {
  Lan lan("");
  MosquittoBroker& broker = lan.broker;
  TestSink& sink = lan.sink;
  MqttDriver* d = lan.d.get();
  lan.Publish("1");
  REQUIRE(sink.WaitFor(1) == 1);

  broker.Stop();
  REQUIRE(WaitUntil([&] { return !d->stats().connected; }, kWaitUs));
  CHECK_THAT(d->stats().last_error, Catch::StartsWith("connection lost"));
  std::string error;
  REQUIRE(broker.Start(&error));
  WaitSubscribed(*d, 2);
  lan.Publish("2");
  REQUIRE(sink.WaitFor(2) == 2);
  CHECK(sink.readings()[1].value == 2);
  CHECK(d->stats().connects == 2);
}

TEST_CASE("mqtt keeps retrying a broker that is not up yet; Stop() is prompt", "[integration]") {
  MosquittoBroker::Options opts;
  opts.port = sluice::testing::FreeLoopbackPort();
  MosquittoBroker broker(opts);
  FakeClock clock;
  TestSink sink;
  auto d = MakeMqtt("{ url = \"" + Url(opts.port) + "\", topic = \"t\" }", clock);
  REQUIRE(d->Start(sink).ok());  // not an error: retried in the background
  REQUIRE(WaitUntil([&] { return !d->stats().last_error.empty(); }, kWaitUs));
  CHECK_THAT(d->stats().last_error, Catch::Contains("cannot connect"));
  CHECK_FALSE(d->stats().connected);
  REQUIRE(broker.Start());
  WaitSubscribed(*d);
  Publish(opts.port, "t", "3");
  REQUIRE(sink.WaitFor(1) == 1);

  // Stop while in backoff and while connected: both return (joined).
  broker.Stop();
  REQUIRE(WaitUntil([&] { return !d->stats().connected; }, kWaitUs));
  d->Stop();
  d->Stop();  // idempotent
}

TEST_CASE("mqtt username and password_file; a refusal says why", "[integration]") {
  sluice::testing::TempDir dir;
  const std::string pwfile = dir.Join("broker.passwd");
  RunOk({"/usr/bin/mosquitto_passwd", "-b", "-c", pwfile, "gw", "s3cret"});
  MosquittoBroker::Options opts;
  opts.extra_config = "password_file " + pwfile + "\n";
  MosquittoBroker broker(opts);
  std::string error;
  REQUIRE(broker.Start(&error));
  REQUIRE(sluice::testing::WriteFile(dir.Join("good"), "s3cret\n"));
  REQUIRE(sluice::testing::WriteFile(dir.Join("bad"), "wrong\n"));
  FakeClock clock;
  TestSink sink;
  auto good = MakeMqtt("{ url = \"" + Url(broker.port()) +
                           "\", topic = \"t\", username = \"gw\", "
                           "password_file = " +
                           Quote(dir.Join("good")) + " }",
                       clock);
  auto bad = MakeMqtt("{ url = \"" + Url(broker.port()) +
                          "\", topic = \"t\", username = \"gw\", "
                          "password_file = " +
                          Quote(dir.Join("bad")) + " }",
                      clock);
  // A missing password file or a directory is an error when the driver is
  // created (sluiced --check), with the reason.
  for (const std::string& wrong : {dir.Join("none"), dir.path()}) {
    StatusOr<std::unique_ptr<Driver>> d = sluice::testing::MakeDriver(
        clock, "mqtt",
        "{ url = \"" + Url(broker.port()) + "\", topic = \"t\", username = \"gw\", password_file = " +
            Quote(wrong) + " }",
        "m", 0);
    REQUIRE_FALSE(d.ok());
    CHECK_THAT(d.status().message(),
               Catch::Contains("cannot be read: ") &&
                   Catch::Contains(wrong == dir.path() ? "is a directory" : "No such file"));
  }
  REQUIRE(good->Start(sink).ok());
  REQUIRE(bad->Start(sink).ok());
  WaitSubscribed(*good);
  REQUIRE(WaitUntil([&] { return !bad->stats().last_error.empty(); }, kWaitUs));
  CHECK_THAT(bad->stats().last_error, Catch::StartsWith("refused by the broker: CONNACK rc"));
  CHECK(bad->stats().connects == 0);
  Publish(broker.port(), "t", "4");  // anonymous publisher (allowed by the test broker)
  REQUIRE(sink.WaitFor(1) == 1);
}
