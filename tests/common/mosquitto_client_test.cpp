// The libmosquitto client wrapper against a real Mosquitto on free loopback
// ports: connect, QoS 1 publish acknowledged, subscribe and receive, a
// refused connection's error naming the cause, TLS with a throwaway PKI.
// Every broker is stopped by PID, every wait is bounded.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/mosquitto_client.h"
#include "tests/agent/certs.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/support.h"

namespace sluice {
namespace {

using testing::MosquittoBroker;
using testing::TempDir;
using testing::WaitUntil;

constexpr int64_t kWaitUs = 10 * 1000000ll;

// Records every callback; a client whose loop runs on a thread of its own.
class Harness : public MosquittoListener {
 public:
  ~Harness() override { StopLoop(); }

  Status Start(const MosquittoOptions& options) {
    StatusOr<std::unique_ptr<MosquittoClient>> c = MosquittoClient::Create(options, this);
    if (!c.ok()) return c.status();
    client = std::move(*c);
    Status st = client->Connect();
    if (!st.ok()) return st;
    loop_ = std::thread([this] {
      Status end = client->RunLoop(stop_, 50);
      std::lock_guard<std::mutex> lock(mu_);
      loop_status_ = end;
      loop_ended_ = true;
    });
    return Status::Ok();
  }
  void StopLoop() {
    stop_ = true;
    if (loop_.joinable()) loop_.join();
  }

  template <typename F>
  auto Get(F f) const {
    std::lock_guard<std::mutex> lock(mu_);
    return f();
  }

  bool connected() const { return Get([&] { return connack_ == 0; }); }
  int connack() const { return Get([&] { return connack_; }); }
  bool loop_ended() const { return Get([&] { return loop_ended_; }); }
  Status loop_status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return loop_status_;
  }
  bool published(int mid) const { return Get([&] { return published_.count(mid) > 0; }); }
  int granted(int mid) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = granted_.find(mid);
    return it == granted_.end() ? -1 : it->second;
  }
  std::vector<std::pair<std::string, std::string>> messages() const {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }

  std::unique_ptr<MosquittoClient> client;

 private:
  void OnConnect(int rc) override {
    std::lock_guard<std::mutex> lock(mu_);
    connack_ = rc;
  }
  void OnPublish(int mid) override {
    std::lock_guard<std::mutex> lock(mu_);
    published_.insert(mid);
  }
  void OnSubscribe(int mid, int granted_qos) override {
    std::lock_guard<std::mutex> lock(mu_);
    granted_[mid] = granted_qos;
  }
  void OnMessage(const MosquittoMessage& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    messages_.emplace_back(std::string(m.topic), std::string(m.payload));
  }

  std::thread loop_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  int connack_ = -1;
  bool loop_ended_ = false;
  Status loop_status_;
  std::set<int> published_;
  std::map<int, int> granted_;
  std::vector<std::pair<std::string, std::string>> messages_;
};

MosquittoOptions Plain(int port, const std::string& id) {
  MosquittoOptions o;
  o.broker.host = "127.0.0.1";
  o.broker.port = port;
  o.client_id = id;
  return o;
}

void StartBroker(MosquittoBroker& broker) {
  std::string error;
  const bool ok = broker.Start(&error);
  INFO(error);
  REQUIRE(ok);
}

TEST_CASE("connects, subscribes, receives and has a QoS 1 publish acknowledged") {
  MosquittoBroker broker;
  StartBroker(broker);
  Harness h;
  REQUIRE(h.Start(Plain(broker.port(), "wrapper-basic")).ok());
  REQUIRE(WaitUntil([&] { return h.connected(); }, kWaitUs));
  CHECK(h.client->LastError().empty());

  int sub_mid = 0;
  REQUIRE(h.client->Subscribe("w/#", 1, &sub_mid).ok());
  REQUIRE(WaitUntil([&] { return h.granted(sub_mid) >= 0; }, kWaitUs));
  CHECK(h.granted(sub_mid) == 1);

  int mid = 0;
  const std::string payload = "21.5";
  REQUIRE(h.client->Publish("w/a", payload.data(), payload.size(), 1, false, &mid).ok());
  REQUIRE(WaitUntil([&] { return h.published(mid); }, kWaitUs));
  REQUIRE(WaitUntil([&] { return !h.messages().empty(); }, kWaitUs));
  CHECK(h.messages()[0] == std::make_pair(std::string("w/a"), payload));

  // A bad topic is the caller's mistake, not the network's.
  Status bad = h.client->Publish("w/#", "x", 1, 1, false, nullptr);
  CHECK(bad.code() == StatusCode::kInvalidArgument);
  CHECK_FALSE(MosquittoClient::ValidTopicFilter("a/#/b"));
  CHECK(MosquittoClient::ValidTopicFilter("a/+/b"));

  // A clean disconnect ends the loop.
  h.client->Disconnect();
  REQUIRE(WaitUntil([&] { return h.loop_ended(); }, kWaitUs));
}

TEST_CASE("a refused TCP connection names the system's reason, never Success") {
  const int port = testing::FreeLoopbackPort();  // nothing listens there
  Harness h;
  Status st = h.Start(Plain(port, "wrapper-refused"));
  if (st.ok()) {
    REQUIRE(WaitUntil([&] { return h.loop_ended(); }, kWaitUs));
    st = h.loop_status();
  }
  INFO(st.message());
  CHECK(st.code() == StatusCode::kUnavailable);
  CHECK_THAT(st.message(), Catch::Contains("Connection refused"));
  CHECK_THAT(h.client->LastError(), Catch::Contains("Connection refused"));
  CHECK_THAT(st.message(), !Catch::Contains("Success"));

  // Connect() again is a reconnect of the same client; still refused, and
  // the reason is this attempt's.
  h.StopLoop();
  Status again = h.client->Connect();
  if (again.ok()) {
    std::atomic<bool> stop{false};
    again = h.client->RunLoop(stop, 50);
  }
  CHECK_THAT(again.message(), Catch::Contains("Connection refused"));
}

TEST_CASE("a CONNACK refusal says so, with the broker's code") {
  MosquittoBroker::Options bo;
  bo.extra_config = "allow_anonymous false\n";  // after the default's `true`
  MosquittoBroker broker(bo);
  StartBroker(broker);
  Harness h;
  REQUIRE(h.Start(Plain(broker.port(), "wrapper-anon")).ok());
  REQUIRE(WaitUntil([&] { return h.loop_ended(); }, kWaitUs));
  CHECK(h.connack() == 5);
  CHECK_THAT(h.loop_status().message(),
             Catch::StartsWith("refused by the broker: CONNACK rc 5"));
  CHECK_THAT(h.client->LastError(), Catch::StartsWith("refused by the broker: CONNACK rc 5"));
}

TEST_CASE("options libmosquitto refuses are errors of Create") {
  Harness h;
  MosquittoOptions o = Plain(1883, "wrapper-tls-opts");
  o.broker.tls = true;
  o.tls.cert_file = "/nonexistent/cert.pem";  // without key_file
  Status st = h.Start(o);
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(st.message(), Catch::Contains("cert_file and key_file go together"));
  MosquittoOptions none;
  CHECK_THAT(h.Start(none).message(), Catch::Contains("no broker address"));
}

TEST_CASE("TLS: trusts the right CA, names the failure with another") {
  TempDir dir;
  testing::TestPki pki;
  std::string error;
  REQUIRE(testing::MakeTestPki(dir.path(), &pki, &error));
  std::unique_ptr<MosquittoBroker> broker;
  int tls_port = 0;
  for (int attempt = 0; attempt < 4 && broker == nullptr; ++attempt) {
    tls_port = testing::FreeLoopbackPort();
    MosquittoBroker::Options bo;
    bo.extra_config = "listener " + std::to_string(tls_port) + " 127.0.0.1\ncafile " + pki.ca +
                      "\ncertfile " + pki.server.cert + "\nkeyfile " + pki.server.key + "\n";
    broker = std::make_unique<MosquittoBroker>(bo);
    if (!broker->Start(&error) ||
        !WaitUntil([&] { return testing::PortAcceptsConnections(tls_port); }, 5000000)) {
      broker.reset();  // the TLS port was taken in between: another one
    }
  }
  INFO(error);
  REQUIRE(broker != nullptr);

  MosquittoOptions o = Plain(tls_port, "wrapper-tls");
  o.broker.tls = true;
  o.broker.scheme = "mqtts";
  o.tls.ca_file = pki.ca;
  {
    Harness h;
    REQUIRE(h.Start(o).ok());
    REQUIRE(WaitUntil([&] { return h.connected(); }, kWaitUs));
    int mid = 0;
    REQUIRE(h.client->Publish("w/tls", "1", 1, 1, false, &mid).ok());
    REQUIRE(WaitUntil([&] { return h.published(mid); }, kWaitUs));
  }
  {
    o.tls.ca_file = pki.other_ca;
    Harness h;
    Status st = h.Start(o);
    if (st.ok()) {
      REQUIRE(WaitUntil([&] { return h.loop_ended(); }, kWaitUs));
      st = h.loop_status();
    }
    INFO(st.message());
    CHECK_FALSE(h.connected());
    CHECK_THAT(st.message(), Catch::Contains("certificate verify failed"));
  }
  {
    o.tls.verify = false;  // neither the chain nor the host name
    Harness h;
    REQUIRE(h.Start(o).ok());
    REQUIRE(WaitUntil([&] { return h.connected(); }, kWaitUs));
  }
}

}  // namespace
}  // namespace sluice
