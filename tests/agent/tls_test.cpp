// TLS, mutual TLS and password authentication of the uplink against a real
// Mosquitto: a throwaway PKI made with the openssl CLI (tests/agent/certs.h),
// a broker with a TLS listener beside its plain one, the real Uplink over a
// real ring, and one real sluiced process. Events are checked where they
// arrive: at a subscriber on the broker's plain listener.
//
// Every process is stopped by PID, every wait is bounded, loopback only,
// free ports only.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent/uplink/uplink.h"
#include "buffer/codec.h"
#include "tests/agent/certs.h"
#include "tests/integration/it_support.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/process.h"
#include "tests/support/subscriber.h"
#include "tests/support/support.h"

namespace sluice {
namespace {

using testing::CertPair;
using testing::MosquittoBroker;
using testing::Process;
using testing::ReceivedMessage;
using testing::Subscriber;
using testing::TempDir;
using testing::TestPki;
using testing::WaitUntil;

constexpr const char* kGateway = "gw-tls";
constexpr const char* kStatusTopic = "sluice/gw-tls/status";
// Distinctive, so that a leak into a log is found by a plain search.
constexpr const char* kPassword = "Pa55-d1st1nct-7f3c9e";
constexpr const char* kWrongPassword = "Wr0ng-pa55-0b41d2";
constexpr const char* kSubUser = "reader";
constexpr const char* kSubPassword = "reader-pw-5a6b";

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}
bool Contains(const std::string& hay, const std::string& needle) {
  return Lower(hay).find(Lower(needle)) != std::string::npos;
}

// One PKI for the whole run (making it takes ~0.2 s; the keys are throwaway).
const TestPki& Pki() {
  static TempDir dir;
  static std::string error;
  static TestPki pki;
  static const bool ok = testing::MakeTestPki(dir.path(), &pki, &error);
  INFO(error);
  REQUIRE(ok);
  return pki;
}

// A Mosquitto with its own plain listener (MosquittoBroker's, for the test's
// subscribers) and a TLS listener on another free loopback port.
class TlsBroker {
 public:
  // `global`: security lines before the TLS listener; `server`: its
  // certificate; `require_cert`: mutual TLS (client certificates by the CA).
  bool Start(const CertPair& server, bool require_cert = false, const std::string& global = "",
             std::string* error = nullptr) {
    for (int attempt = 0; attempt < 4; ++attempt) {
      tls_port_ = testing::FreeLoopbackPort();
      MosquittoBroker::Options o;
      o.extra_config = global + "listener " + std::to_string(tls_port_) + " 127.0.0.1\n" +
                       "cafile " + Pki().ca + "\n" + "certfile " + server.cert + "\n" +
                       "keyfile " + server.key + "\n" +
                       (require_cert ? "require_certificate true\n" : "");
      broker_ = std::make_unique<MosquittoBroker>(o);
      if (broker_->Start(error) &&
          WaitUntil([&] { return testing::PortAcceptsConnections(tls_port_); }, 5000000)) {
        return true;
      }
      broker_.reset();  // the TLS port was taken in between: another one
    }
    return false;
  }
  std::string TlsUrl(const std::string& scheme = "mqtts") const {
    return scheme + "://127.0.0.1:" + std::to_string(tls_port_);
  }
  std::string PlainUrl() const { return broker_->url(); }
  int plain_port() const { return broker_->port(); }
  std::string log() const { return broker_->log(); }

 private:
  int tls_port_ = 0;
  std::unique_ptr<MosquittoBroker> broker_;
};

void StartBroker(TlsBroker& broker, const CertPair& server, bool require_cert = false,
                 const std::string& global = "") {
  std::string err;
  const bool ok = broker.Start(server, require_cert, global, &err);
  INFO(err);
  REQUIRE(ok);
}

struct RingFixture {
  TempDir dir;
  std::unique_ptr<Ring> ring;
  uint64_t appended = 0;

  RingFixture() {
    RingOptions o;
    o.data_dir = dir.path();
    o.durability = Durability::kOff;
    o.commit_interval_us = 5000;
    o.upstreams = {"cloud"};
    auto r = Ring::Open(o, SystemClock::Get());
    REQUIRE(r.ok());
    ring = std::move(*r);
  }
  ~RingFixture() { (void)ring->Stop(); }

  void Append(int n) {
    for (int i = 0; i < n; ++i) {
      const uint64_t k = ++appended;
      Reading r;
      r.sensor = "tls.sensor" + std::to_string(k % 3);
      r.ts_us = 1764075600000000 + static_cast<int64_t>(k);
      r.value = k * 0.5;
      r.unit = "C";
      Record rec;
      rec.kind = static_cast<int>(EventKind::kReading);
      rec.priority = kReadingPriority;
      rec.ts_us = r.ts_us;
      rec.sensor = r.sensor;
      rec.body = EncodeReading(r);
      REQUIRE(ring->Append(std::move(rec), 5000000).ok());
    }
    REQUIRE(ring->Flush().ok());
  }
};

const char* ClientName(MqttClient client) {
  return client == MqttClient::kPaho ? "paho" : "mosquitto";
}

// Each case runs once per MQTT client (GENERATE).
MqttClient EachClient() {
  const MqttClient client = GENERATE(MqttClient::kMosquitto, MqttClient::kPaho);
  UNSCOPED_INFO("client = " << ClientName(client));
  return client;
}

UplinkOptions TlsUpstream(const std::string& url, MqttClient client) {
  UplinkOptions c;
  c.name = "cloud";
  c.client = client;
  c.url = url;
  c.broker = ParseBrokerAddress(url).value();
  c.tls = url.rfind("mqtts://", 0) == 0 || url.rfind("ssl://", 0) == 0;
  c.tls_ca_file = Pki().ca;
  c.max_inflight = 32;
  c.keepalive_s = 5;
  c.connect_timeout_us = 2000000;
  c.reconnect_min_us = 50000;
  c.reconnect_max_us = 300000;
  return c;
}

uint64_t SeqOf(const std::string& payload) {
  const size_t p = payload.find("\"seq\":");
  return p == std::string::npos ? 0 : std::stoull(payload.substr(p + 6));
}

// Distinct seqs 1..n seen on event topics (not the status topic).
size_t SeqsSeen(const std::vector<ReceivedMessage>& msgs, uint64_t n) {
  std::set<uint64_t> seen;
  for (const auto& m : msgs) {
    if (m.topic == kStatusTopic) continue;
    const uint64_t s = SeqOf(m.payload);
    if (s >= 1 && s <= n) seen.insert(s);
  }
  return seen.size();
}

bool WaitAllSeqs(const Subscriber& sub, uint64_t n, int64_t timeout_us) {
  return sub.WaitFor([n](const std::vector<ReceivedMessage>& m) { return SeqsSeen(m, n) == n; },
                     timeout_us);
}

// A fresh subscriber to the status topic gets the retained "online".
void CheckRetainedOnline(const std::string& plain_url) {
  Subscriber status(plain_url, kStatusTopic);
  std::string err;
  REQUIRE(status.Start(&err));
  CHECK(status.WaitFor(
      [](const std::vector<ReceivedMessage>& m) {
        return !m.empty() && m.back().retained && m.back().payload == "online";
      },
      5000000));
}

// Delivers n new events through an uplink configured by `config` and
// checks them at a subscriber on the plain listener, and optionally that
// the broker keeps the retained "online" (a fresh subscription costs Paho
// a few seconds here, so only some cases look).
void CheckDelivers(TlsBroker& broker, const UplinkOptions& config, int n,
                   bool check_retained = false) {
  Subscriber sub(broker.PlainUrl(), "sluice/#");
  std::string err;
  REQUIRE(sub.Start(&err));
  RingFixture rf;
  rf.Append(n / 2);
  Uplink up(config, kGateway, 0, *rf.ring, SystemClock::Get());
  REQUIRE(up.Start().ok());
  rf.Append(n - n / 2);
  const bool all = WaitAllSeqs(sub, n, 20000000);
  INFO("last_error: " << up.Stats().last_error << "\nbroker log:\n" << broker.log());
  REQUIRE(all);
  REQUIRE(WaitUntil([&] { return rf.ring->Cursor(0) == static_cast<uint64_t>(n); }, 5000000));
  const UplinkStats s = up.Stats();
  CHECK(s.connected);
  CHECK(s.acked_events == static_cast<uint64_t>(n));
  // The live "online" reached the subscriber first.
  const auto msgs = sub.Messages();
  REQUIRE(!msgs.empty());
  CHECK(msgs.front().topic == kStatusTopic);
  CHECK(msgs.front().payload == "online");
  if (check_retained) CheckRetainedOnline(broker.PlainUrl());
  up.Stop(200000);
}

// Runs an uplink that must not get a connection; returns its stats after
// at least `attempts` failed attempts. Nothing may be acknowledged meanwhile.
UplinkStats CheckRefused(const UplinkOptions& config, int64_t at_least_us = 500000,
                         uint64_t attempts = 2) {
  RingFixture rf;
  rf.Append(10);
  Uplink up(config, kGateway, 0, *rf.ring, SystemClock::Get());
  REQUIRE(up.Start().ok());
  const int64_t t0 = testing::MonoNowUs();
  // Bounded: 50..300 ms apart, each refused within a few seconds.
  WaitUntil([&] { return up.Stats().connect_failures >= attempts; }, 20000000);
  while (testing::MonoNowUs() - t0 < at_least_us) {
    CHECK_FALSE(up.Stats().connected);
    testing::SleepMs(50);
  }
  UplinkStats s = up.Stats();
  INFO("last_error: " << s.last_error);
  CHECK_FALSE(s.connected);
  CHECK(s.connect_failures >= attempts);  // keeps retrying, does not give up or crash
  CHECK(s.acked_events == 0);
  CHECK(rf.ring->Cursor(0) == 0);
  CHECK_FALSE(s.last_error.empty());
  up.Stop(0);
  return s;
}

// Sends this process's stderr (where the uplink logs) to a file while alive.
class StderrCapture {
 public:
  explicit StderrCapture(const std::string& path) {
    std::fflush(stderr);
    saved_ = dup(2);
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(saved_ >= 0);
    REQUIRE(fd >= 0);
    dup2(fd, 2);
    close(fd);
  }
  ~StderrCapture() { Restore(); }
  void Restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    saved_ = -1;
  }

 private:
  int saved_ = -1;
};

// The refusals, each against its own broker: a strict case checks that
// the uplink is refused and keeps retrying, a [!mayfail] case how the
// refusal is named. Run once per process (each costs a few seconds of
// Paho's connect latency) and shared by both.
enum class Kind { kWrongHost, kNoClientCert, kForeignClientCert, kWrongPassword, kNoPassword };
std::string Refusal(Kind kind, MqttClient client);

TEST_CASE("mqtts:// with ca_file: connects, delivers every event, retained online",
          "[tls]") {
  const MqttClient client = EachClient();
  TlsBroker broker;
  StartBroker(broker, Pki().server);
  CheckDelivers(broker, TlsUpstream(broker.TlsUrl("mqtts"), client), 200, /*check_retained=*/true);
  CHECK(Contains(broker.log(), "as " + std::string(kGateway)));
}

TEST_CASE("ssl:// is the same as mqtts://", "[tls]") {
  const MqttClient client = EachClient();
  TlsBroker broker;
  StartBroker(broker, Pki().server);
  CheckDelivers(broker, TlsUpstream(broker.TlsUrl("ssl"), client), 20);
  // And the TLS port does not speak plain MQTT: mqtt:// to it never connects.
  CheckRefused(TlsUpstream("mqtt://127.0.0.1:" +
                               broker.TlsUrl().substr(broker.TlsUrl().rfind(':') + 1),
                           client));
}

TEST_CASE("verification is on by default: a broker signed by another CA is refused, "
          "retried, and accepted once its CA is trusted", "[tls]") {
  const MqttClient client = EachClient();
  TlsBroker broker;
  StartBroker(broker, Pki().server_other_ca);
  TempDir dir;
  // The uplink's ca_file, rewritten below: Paho loads it on every connect.
  const std::string trust = dir.Join("trust.pem");
  REQUIRE(testing::WriteFile(trust, testing::ReadFile(Pki().ca)));
  UplinkOptions config = TlsUpstream(broker.TlsUrl(), client);
  config.tls_ca_file = trust;
  REQUIRE(config.tls_verify);  // the default

  Subscriber sub(broker.PlainUrl(), "sluice/#");
  std::string err;
  REQUIRE(sub.Start(&err));
  RingFixture rf;
  const int kN = 50;
  rf.Append(kN);
  const std::string log_path = dir.Join("uplink.log");
  UplinkStats refused;
  {
    StderrCapture capture(log_path);
    Uplink up(config, kGateway, 0, *rf.ring, SystemClock::Get());
    REQUIRE(up.Start().ok());
    WaitUntil([&] { return up.Stats().connect_failures >= 4; }, 30000000);
    testing::SleepMs(500);
    refused = up.Stats();
    const uint64_t cursor = rf.ring->Cursor(0);

    // Trust the broker's CA: the running uplink connects on a later attempt.
    REQUIRE(testing::WriteFile(trust, testing::ReadFile(Pki().other_ca)));
    const bool delivered = WaitAllSeqs(sub, kN, 20000000);
    const UplinkStats fixed = up.Stats();
    up.Stop(200000);
    capture.Restore();

    INFO("last_error while refused: " << refused.last_error);
    INFO("uplink log:\n" << testing::ReadFile(log_path));
    CHECK_FALSE(refused.connected);
    CHECK(refused.connect_failures >= 4);  // kept retrying
    CHECK(refused.acked_events == 0);
    CHECK(cursor == 0);
    // The error names the TLS failure, not just "connect failure".
    CHECK(Contains(refused.last_error, "certificate verify failed"));
    CHECK(Contains(testing::ReadFile(log_path), "certificate verify failed"));
    // Recovery.
    CHECK(delivered);
    CHECK(fixed.connected);
  }
  CHECK(SeqsSeen(sub.Messages(), kN) == static_cast<size_t>(kN));
}

TEST_CASE("verification checks the host name: a certificate for another name is refused",
          "[tls]") {
  const MqttClient client = EachClient();
  // Signed by the trusted CA, but for DNS:broker.invalid, not 127.0.0.1.
  Refusal(Kind::kWrongHost, client);
  // verify = false accepts it.
  TlsBroker broker;
  StartBroker(broker, Pki().server_wrong_host);
  UplinkOptions off = TlsUpstream(broker.TlsUrl(), client);
  off.tls_verify = false;
  CheckDelivers(broker, off, 20);
}

TEST_CASE("verify = false connects to a broker signed by another CA", "[tls]") {
  const MqttClient client = EachClient();
  TlsBroker broker;
  StartBroker(broker, Pki().server_other_ca);
  UplinkOptions config = TlsUpstream(broker.TlsUrl(), client);
  config.tls_verify = false;  // ca_file still names the wrong CA
  CheckDelivers(broker, config, 50);
}

// Sets an environment variable for the life of this object (the tests run
// one at a time; OpenSSL reads SSL_CERT_FILE on each connect).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    const char* old = std::getenv(name);
    if (old != nullptr) old_ = std::make_unique<std::string>(old);
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::unique_ptr<std::string> old_;
};

TEST_CASE("no ca_file: the system trust store decides (here SSL_CERT_FILE names the test CA)",
          "[tls]") {
  const MqttClient client = EachClient();
  TlsBroker broker;
  StartBroker(broker, Pki().server);
  UplinkOptions config = TlsUpstream(broker.TlsUrl(), client);
  config.tls_ca_file.clear();
  {
    // The system's store does not hold the test CA: refused, and said so.
    TempDir empty;
    ScopedEnv file("SSL_CERT_FILE", empty.Join("none.pem"));
    ScopedEnv dir("SSL_CERT_DIR", empty.path());
    const UplinkStats s = CheckRefused(config);
    INFO("last_error: " << s.last_error);
    CHECK(Contains(s.last_error, "certificate verify failed"));
  }
  // The test CA as the system's trust store: delivers, host name checked.
  ScopedEnv file("SSL_CERT_FILE", Pki().ca);
  CheckDelivers(broker, config, 20);
}

TEST_CASE("mutual TLS: refused without a client certificate or with one from another CA, "
          "delivers with the right one", "[tls]") {
  const MqttClient client = EachClient();
  Refusal(Kind::kNoClientCert, client);
  Refusal(Kind::kForeignClientCert, client);
  TlsBroker broker;
  StartBroker(broker, Pki().server, /*require_cert=*/true);
  UplinkOptions good = TlsUpstream(broker.TlsUrl(), client);
  good.tls_cert_file = Pki().client.cert;
  good.tls_key_file = Pki().client.key;
  CheckDelivers(broker, good, 100);
}

// Both clients name a refusal in the same words (libmosquitto's; the Paho
// transport asks OpenSSL when Paho does not say, agent/uplink/tls_probe.h),
// so an operator can tell them from each other and from a closed port.
TEST_CASE("a refused TLS connection names its reason", "[tls]") {
  const MqttClient client = EachClient();
  SECTION("server certificate for another host name") {
    const std::string e = Refusal(Kind::kWrongHost, client);
    INFO("last_error: " << e);
    CHECK(Contains(e, "host name verification failed"));
    CHECK(Contains(e, "certificate verify failed"));
  }
  SECTION("no client certificate for a broker that requires one") {
    // The broker's alert, or (when the client ends before reading it) the
    // close that says why; never a bare connect failure.
    const std::string e = Refusal(Kind::kNoClientCert, client);
    INFO("last_error: " << e);
    CHECK((Contains(e, "alert certificate required") ||
           Contains(e, "a broker rejecting the client certificate does this")));
  }
  SECTION("client certificate by another CA") {
    // Likewise: "unknown ca", or the close.
    const std::string e = Refusal(Kind::kForeignClientCert, client);
    INFO("last_error: " << e);
    CHECK((Contains(e, "alert unknown ca") ||
           Contains(e, "a broker rejecting the client certificate does this")));
  }
}

// ---- username and password_file --------------------------------------

// Mosquitto 2.0 only has per-listener authentication with
// per_listener_settings, which must come before MosquittoBroker's own
// `allow_anonymous true`. So the whole broker requires a password, and the
// test subscribes with mosquitto_sub and its own account.
class PasswordSubscriber {
 public:
  PasswordSubscriber(int port, const std::string& out_path) : out_(out_path) {
    Process::Options o;
    // stdbuf: mosquitto_sub's stdout is a file, so it would be block buffered.
    o.argv = {"/usr/bin/stdbuf", "-oL", "/usr/bin/mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(port),
              "-u", kSubUser, "-P", kSubPassword, "-q", "1", "-t", "sluice/#",
              "-d", "-F", "MSG %r %t %p"};
    o.stdout_path = out_path;
    o.stderr_path = out_path;
    std::string err;
    started_ = process_.Start(o, &err);
  }
  ~PasswordSubscriber() { process_.Terminate(2000000); }

  // Bounded: the SUBACK is in -d's output.
  bool WaitSubscribed() {
    return started_ && WaitUntil([&] { return Contains(testing::ReadFile(out_), "SUBACK"); },
                                 10000000);
  }
  // (retained, topic, payload) of each message so far.
  struct Msg {
    bool retained;
    std::string topic, payload;
  };
  std::vector<Msg> Messages() const {
    std::vector<Msg> out;
    const std::string text = testing::ReadFile(out_);
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) break;  // a partial line
      const std::string line = text.substr(pos, nl - pos);
      pos = nl + 1;
      if (line.rfind("MSG ", 0) != 0) continue;
      const size_t sp1 = line.find(' ', 4), sp2 = line.find(' ', sp1 + 1);
      if (sp1 == std::string::npos || sp2 == std::string::npos) continue;
      out.push_back({line.substr(4, sp1 - 4) == "1", line.substr(sp1 + 1, sp2 - sp1 - 1),
                     line.substr(sp2 + 1)});
    }
    return out;
  }
  size_t SeqsSeen(uint64_t n) const {
    std::set<uint64_t> seen;
    for (const auto& m : Messages()) {
      if (m.topic.find("/status") != std::string::npos) continue;
      const uint64_t s = SeqOf(m.payload);
      if (s >= 1 && s <= n) seen.insert(s);
    }
    return seen.size();
  }
  bool SawOnline(const std::string& topic) const {
    for (const auto& m : Messages()) {
      if (m.topic == topic && m.payload == "online") return true;
    }
    return false;
  }
  std::string output() const { return testing::ReadFile(out_); }

 private:
  std::string out_;
  Process process_;
  bool started_ = false;
};

struct PasswordSetup {
  TempDir dir;
  std::string passwd;      // mosquitto's password file
  std::string right_file;  // the uplink's password_file (with a trailing newline)
  std::string wrong_file;
  TlsBroker broker;

  PasswordSetup() {
    passwd = dir.Join("mosquitto.passwd");
    auto run = [&](const std::vector<std::string>& argv) {
      std::string err;
      const bool ok = testing::RunTool(argv, dir.Join("passwd.log"), &err);
      INFO(err);
      REQUIRE(ok);
    };
    run({"/usr/bin/mosquitto_passwd", "-b", "-c", passwd, kGateway, kPassword});
    run({"/usr/bin/mosquitto_passwd", "-b", passwd, kSubUser, kSubPassword});
    right_file = dir.Join("right.pass");
    wrong_file = dir.Join("wrong.pass");
    REQUIRE(testing::WriteFile(right_file, std::string(kPassword) + "\n"));
    REQUIRE(testing::WriteFile(wrong_file, std::string(kWrongPassword) + "\n"));
    // Global (see above): appended after MosquittoBroker's allow_anonymous.
    StartBroker(broker, Pki().server, false,
                "allow_anonymous false\npassword_file " + passwd + "\n");
  }
};

TEST_CASE("username + password_file over TLS: the right password delivers, a wrong one or "
          "none is refused", "[tls][auth]") {
  const MqttClient client = EachClient();
  // The broker said no (a CONNACK), not the socket; the password stays out.
  const std::string wrong = Refusal(Kind::kWrongPassword, client);
  CHECK(Contains(wrong, "CONNACK"));
  CHECK_FALSE(Contains(wrong, kWrongPassword));
  CHECK(Contains(Refusal(Kind::kNoPassword, client), "CONNACK"));

  // The right password (its file ends in a newline, as `echo` writes it).
  PasswordSetup ps;
  UplinkOptions config = TlsUpstream(ps.broker.TlsUrl(), client);
  config.username = kGateway;
  config.password_file = ps.right_file;
  PasswordSubscriber sub(ps.broker.plain_port(), ps.dir.Join("sub.out"));
  REQUIRE(sub.WaitSubscribed());
  RingFixture rf;
  const int kN = 100;
  rf.Append(kN);
  Uplink up(config, kGateway, 0, *rf.ring, SystemClock::Get());
  REQUIRE(up.Start().ok());
  const bool all = WaitUntil([&] { return sub.SeqsSeen(kN) == kN; }, 20000000, 20000);
  INFO("last_error: " << up.Stats().last_error << "\nsubscriber:\n" << sub.output());
  CHECK(all);
  CHECK(sub.SawOnline(kStatusTopic));
  CHECK(WaitUntil([&] { return rf.ring->Cursor(0) == static_cast<uint64_t>(kN); }, 5000000));
  up.Stop(200000);
}

// Mosquitto 2.0 answers a wrong or missing password with CONNACK 5; both
// clients name it alike.
TEST_CASE("a refused password is reported as bad credentials / not authorized",
          "[tls][auth]") {
  const MqttClient client = EachClient();
  for (Kind k : {Kind::kWrongPassword, Kind::kNoPassword}) {
    const std::string e = Refusal(k, client);
    INFO("last_error: " << e);
    CHECK(Contains(e, "refused by the broker: CONNACK rc 5 (not authorized)"));
  }
}

std::string Refusal(Kind kind, MqttClient client) {
  static std::map<std::pair<Kind, MqttClient>, std::string> done;
  auto it = done.find({kind, client});
  if (it != done.end()) return it->second;
  std::unique_ptr<PasswordSetup> ps;
  TlsBroker broker;
  UplinkOptions config;
  switch (kind) {
    case Kind::kWrongHost:
      StartBroker(broker, Pki().server_wrong_host);
      config = TlsUpstream(broker.TlsUrl(), client);
      break;
    case Kind::kNoClientCert:
      StartBroker(broker, Pki().server, true);
      config = TlsUpstream(broker.TlsUrl(), client);
      break;
    case Kind::kForeignClientCert:
      StartBroker(broker, Pki().server, true);
      config = TlsUpstream(broker.TlsUrl(), client);
      config.tls_cert_file = Pki().client_other_ca.cert;
      config.tls_key_file = Pki().client_other_ca.key;
      break;
    case Kind::kWrongPassword:
    case Kind::kNoPassword:
      ps = std::make_unique<PasswordSetup>();
      config = TlsUpstream(ps->broker.TlsUrl(), client);
      config.username = kGateway;
      if (kind == Kind::kWrongPassword) config.password_file = ps->wrong_file;
      break;
  }
  const UplinkStats s = CheckRefused(config);
  return done[{kind, client}] = s.last_error;
}

TEST_CASE("sluiced with TLS, username and password_file: delivers, reports a wrong password, "
          "never logs the password", "[tls][auth][sluiced]") {
  const MqttClient client = EachClient();
  REQUIRE(!testing::BinDir().empty());
  PasswordSetup ps;
  PasswordSubscriber sub(ps.broker.plain_port(), ps.dir.Join("sub.out"));
  REQUIRE(sub.WaitSubscribed());

  auto config_for = [&](const std::string& name, const std::string& password_file) {
    testing::ConfigSpec spec;
    spec.data_dir = ps.dir.Join(name + ".data");
    spec.control_socket = ps.dir.Join(name + ".sock");
    spec.shutdown_grace = "2s";
    spec.sensors = {testing::SimulatedSensor("boiler.temp", "20ms")};
    spec.upstream_url = ps.broker.TlsUrl("mqtts");
    std::string toml = spec.ToToml();  // [[upstream]] is the last table
    toml += "client_id = \"" + std::string(kGateway) + "\"\n";
    toml += "client = \"" + std::string(ClientName(client)) + "\"\n";
    toml += "username = \"" + std::string(kGateway) + "\"\n";
    toml += "password_file = \"" + password_file + "\"\n";
    toml += "tls = { ca_file = \"" + Pki().ca + "\", cert_file = \"" + Pki().client.cert +
            "\", key_file = \"" + Pki().client.key + "\", verify = true }\n";
    // Debug logging: the password must not leak at any level.
    const std::string agent = "[agent]\n";
    toml.replace(toml.find(agent), agent.size(), agent + "log_level = \"debug\"\n");
    const std::string path = ps.dir.Join(name + ".toml");
    REQUIRE(testing::WriteFile(path, toml));
    return path;
  };

  // The wrong password first: refused (the broker's CONNACK), logged,
  // retried, exit 0 on SIGTERM.
  {
    testing::Sluiced d(config_for("wrong", ps.wrong_file), ps.dir.Join("wrong.err"));
    std::string err;
    REQUIRE(d.Start(&err));
    const bool said = WaitUntil(
        [&] {
          const std::string log = d.Log();
          return testing::CountOf(log, "WARN uplink: cloud: connect to mqtts://127.0.0.1:") >= 2;
        },
        15000000, 20000);
    CHECK(d.Alive());
    const int st = d.Terminate(10000000);
    const std::string log = d.Log();
    INFO("sluiced stderr:\n" << log);
    CHECK(said);
    CHECK(Contains(log, "CONNACK"));
    CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK_FALSE(Contains(log, kWrongPassword));
    CHECK_FALSE(Contains(log, kPassword));
  }
  CHECK(sub.SeqsSeen(1) == 0);

  // The right one: readings arrive, with online status.
  {
    testing::Sluiced d(config_for("right", ps.right_file), ps.dir.Join("right.err"));
    std::string err;
    REQUIRE(d.Start(&err));
    const bool got = WaitUntil([&] { return sub.SeqsSeen(20) == 20; }, 20000000, 20000);
    const int st = d.Terminate(10000000);
    const std::string log = d.Log();
    INFO("sluiced stderr:\n" << log << "\nsubscriber:\n" << sub.output());
    CHECK(got);
    CHECK(sub.SawOnline("sluice/" + std::string(testing::kAgent) + "/status"));
    CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
    CHECK(Contains(log, "connected to mqtts://127.0.0.1:"));
    CHECK_FALSE(Contains(log, kPassword));
  }
}

}  // namespace
}  // namespace sluice
