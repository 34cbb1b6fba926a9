// Both transports (libmosquitto and Paho) against a real Mosquitto on a
// free loopback port: every case runs once per transport (GENERATE).
#include "agent/uplink/transport.h"
#include "common/redact_url.h"

#include <sys/resource.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>

#include "tests/support/mosquitto_broker.h"
#include "tests/support/subscriber.h"
#include "tests/support/support.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace {

using testing::MosquittoBroker;
using testing::ReceivedMessage;
using testing::Subscriber;
using testing::TcpProxy;

class RecordingListener : public TransportListener {
 public:
  void OnConnectionLost(const std::string& cause) override {
    std::lock_guard<std::mutex> lock(mu_);
    lost_++;
    cause_ = cause;
    cv_.notify_all();
  }
  void OnPublishAcked(uint64_t tag) override {
    std::lock_guard<std::mutex> lock(mu_);
    acked_.insert(tag);
    cv_.notify_all();
  }
  bool WaitAcked(size_t n, int64_t timeout_us) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::microseconds(timeout_us),
                        [&] { return acked_.size() >= n; });
  }
  bool WaitLost(int64_t timeout_us) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::microseconds(timeout_us), [&] { return lost_ > 0; });
  }
  size_t acked_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_.size();
  }
  std::set<uint64_t> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  int lost() {
    std::lock_guard<std::mutex> lock(mu_);
    return lost_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<uint64_t> acked_;
  int lost_ = 0;
  std::string cause_;
};

using Factory = StatusOr<std::unique_ptr<Transport>> (*)(const TransportOptions&,
                                                          TransportListener*);

struct Impl {
  const char* name;
  Factory make;
};

// One of the two transports, per GENERATE run.
Impl AnyTransport() {
  const int which = GENERATE(0, 1);
  const Impl impl = which == 0 ? Impl{"mosquitto", &NewMosquittoTransport}
                               : Impl{"paho", &NewPahoTransport};
  return impl;
}

// CPU time of this process (all threads), in microseconds.
int64_t ProcessCpuUs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

TransportOptions Options(const std::string& url) {
  TransportOptions o;
  StatusOr<BrokerAddress> broker = ParseBrokerAddress(url);
  if (broker.ok()) o.broker = *broker;  // else an empty address the factory refuses
  o.client_id = "transport-test";
  o.keepalive_s = 5;
  o.connect_timeout_us = 3000000;
  o.max_inflight = 256;
  return o;
}

TEST_CASE("URLs are normalised for Paho", "[transport]") {
  bool tls = true;
  CHECK(NormalizeBrokerUrl("mqtt://h:1", &tls).value() == "tcp://h:1");
  CHECK(!tls);
  CHECK(NormalizeBrokerUrl("tcp://127.0.0.1", &tls).value() == "tcp://127.0.0.1:1883");
  CHECK(NormalizeBrokerUrl("mqtts://broker.example.com", &tls).value() ==
        "ssl://broker.example.com:8883");
  CHECK(tls);
  CHECK(NormalizeBrokerUrl("ssl://h:8884/", &tls).value() == "ssl://h:8884");
  CHECK(NormalizeBrokerUrl("http://h:1", &tls).status().code() == StatusCode::kInvalidArgument);
  CHECK(!NormalizeBrokerUrl("h:1", &tls).ok());
  CHECK(!NormalizeBrokerUrl("mqtt://", &tls).ok());
  CHECK(!NormalizeBrokerUrl("mqtt://h:99999", &tls).ok());
  CHECK(!NormalizeBrokerUrl("mqtt://h:x", &tls).ok());
  CHECK(!NormalizeBrokerUrl("mqtt://u:secret@h:1", &tls).ok());
  CHECK(NormalizeBrokerUrl("mqtt://u:secret@h:1", &tls).status().message().find("secret") ==
        std::string::npos);
  CHECK(RedactUrl("mqtt://u:secret@h:1") == "mqtt://***@h:1");
  CHECK(RedactUrl("mqtt://u:p@ss@h:1/x@y") == "mqtt://***@h:1/x@y");
  CHECK(RedactUrl("mqtt://h:1/x@y") == "mqtt://h:1/x@y");
  CHECK(RedactUrl("mqtt://h:1") == "mqtt://h:1");
}

TEST_CASE("bad URL and refused connection become Status", "[transport]") {
  const Impl impl = AnyTransport();
  INFO("transport: " << impl.name);
  RecordingListener listener;
  auto bad = impl.make(Options("http://127.0.0.1:1"), &listener);
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);

  const int port = testing::FreeLoopbackPort();  // nothing listens there
  auto t = impl.make(Options("mqtt://127.0.0.1:" + std::to_string(port)), &listener);
  REQUIRE(t.ok());
  Status st = (*t)->Connect();
  INFO("error: " << st.message());
  CHECK(st.code() == StatusCode::kUnavailable);
  CHECK(st.message().find("127.0.0.1") != std::string::npos);
  // The real cause, whichever library: not "Success", not a bare failure.
  CHECK(st.message().find("Connection refused") != std::string::npos);
  CHECK(st.message().find("Success") == std::string::npos);
  CHECK(!(*t)->IsConnected());
  CHECK(!(*t)->Publish("a", "x", 1, 1, false, 1).ok());
  (*t)->Disconnect(0);

  // A peer that accepts and closes at once (the proxy's own target refuses):
  // the message still names a cause, never "Success".
  testing::TcpProxy closer(testing::FreeLoopbackPort());
  REQUIRE(closer.Start());
  auto t2 = impl.make(Options(closer.url()), &listener);
  REQUIRE(t2.ok());
  Status st2 = (*t2)->Connect();
  INFO("error: " << st2.message());
  CHECK(!st2.ok());
  CHECK(st2.message().find("Success") == std::string::npos);
  (*t2)->Disconnect(0);
}

TEST_CASE("connect, QoS 1 publishes are acked with their tags, disconnect", "[transport]") {
  const Impl impl = AnyTransport();
  INFO("transport: " << impl.name);
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "t/#");
  REQUIRE(sub.Start(&err));

  RecordingListener listener;
  auto t = impl.make(Options("mqtt://127.0.0.1:" + std::to_string(broker.port())), &listener);
  REQUIRE(t.ok());
  Transport& tr = **t;
  REQUIRE(tr.Connect().ok());
  CHECK(tr.IsConnected());

  // More than Paho's default maxBufferedMessages (100), paced by a window of
  // max_inflight as the uplink does.
  const uint64_t kN = 3000;
  const int64_t t0 = testing::MonoNowUs();
  const int64_t cpu0 = ProcessCpuUs();
  for (uint64_t i = 1; i <= kN; ++i) {
    while (i > 256 && listener.acked_count() + 256 < i) {
      REQUIRE(listener.WaitAcked(i - 256, 5000000));
    }
    const std::string payload = std::to_string(i);
    Status st = tr.Publish("t/" + std::to_string(i % 4), payload.data(), payload.size(), 1,
                           false, 1000 + i);
    REQUIRE(st.ok());
  }
  REQUIRE(listener.WaitAcked(kN, 20000000));
  const int64_t dt = testing::MonoNowUs() - t0;
  const int64_t cpu = ProcessCpuUs() - cpu0;
  // A figure, not an assertion: compare the two transports in one run.
  WARN(impl.name << " transport: " << kN << " QoS 1 publishes acked in " << dt / 1000
                 << " ms (" << (kN * 1000000 / std::max<int64_t>(1, dt)) << " msg/s, "
                 << static_cast<double>(cpu) / kN << " us CPU per message in this process)");
  auto acked = listener.acked();
  CHECK(*acked.begin() == 1001);
  CHECK(*acked.rbegin() == 1000 + kN);
  REQUIRE(sub.WaitForCount(kN, 20000000));

  // QoS 0 is acked on hand-off.
  REQUIRE(tr.Publish("t/q0", "z", 1, 0, false, 99).ok());
  CHECK(listener.WaitAcked(kN + 1, 5000000));

  tr.Disconnect(1000000);
  CHECK(!tr.IsConnected());
  CHECK(listener.lost() == 0);  // a requested disconnect is not a loss

  // Connect again on the same transport.
  REQUIRE(tr.Connect().ok());
  REQUIRE(tr.Publish("t/again", "y", 1, 1, false, 5).ok());
  CHECK(listener.WaitAcked(kN + 2, 5000000));
  tr.Disconnect(1000000);
}

// Per-message cost of each transport with nothing else in this process (no
// subscriber here; the broker is another process): a window of 256 QoS 1
// publishes as the uplink keeps. Prints figures, asserts no timing.
TEST_CASE("publish rate and CPU per message", "[transport][rate]") {
  const Impl impl = AnyTransport();
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  struct Counter : TransportListener {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t acked = 0;
    void OnConnectionLost(const std::string&) override {}
    void OnPublishAcked(uint64_t) override {
      std::lock_guard<std::mutex> lock(mu);
      ++acked;
      cv.notify_one();
    }
  } counter;
  auto t = impl.make(Options("mqtt://127.0.0.1:" + std::to_string(broker.port())), &counter);
  REQUIRE(t.ok());
  REQUIRE((*t)->Connect().ok());
  const std::string payload(100, 'p');
  const uint64_t kN = 30000, kWindow = 256;
  const int64_t t0 = testing::MonoNowUs();
  const int64_t cpu0 = ProcessCpuUs();
  for (uint64_t i = 1; i <= kN; ++i) {
    if (i > kWindow) {
      std::unique_lock<std::mutex> lock(counter.mu);
      REQUIRE(counter.cv.wait_for(lock, std::chrono::seconds(10),
                                  [&] { return counter.acked + kWindow >= i; }));
    }
    REQUIRE((*t)->Publish("rate/x", payload.data(), payload.size(), 1, false, i).ok());
  }
  {
    std::unique_lock<std::mutex> lock(counter.mu);
    REQUIRE(counter.cv.wait_for(lock, std::chrono::seconds(20),
                                [&] { return counter.acked >= kN; }));
  }
  const int64_t dt = testing::MonoNowUs() - t0;
  const int64_t cpu = ProcessCpuUs() - cpu0;
  WARN(impl.name << ": " << kN << " QoS 1 publishes (100 B, window " << kWindow << ") in "
                 << dt / 1000 << " ms: " << (kN * 1000000 / std::max<int64_t>(1, dt))
                 << " msg/s, " << static_cast<double>(cpu) / kN
                 << " us CPU per message (client process, all threads)");
  (*t)->Disconnect(1000000);
}

TEST_CASE("the retained will is delivered when the link is cut", "[transport]") {
  const Impl impl = AnyTransport();
  INFO("transport: " << impl.name);
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());

  RecordingListener listener;
  TransportOptions o = Options(proxy.url());
  o.will_topic = "status/gw";
  auto t = impl.make(o, &listener);
  REQUIRE(t.ok());
  REQUIRE((*t)->Connect().ok());
  REQUIRE((*t)->Publish("status/gw", "online", 6, 1, true, 1).ok());
  REQUIRE(listener.WaitAcked(1, 5000000));

  Subscriber sub(broker.url(), "status/#");
  REQUIRE(sub.Start(&err));
  REQUIRE(sub.WaitFor([](const std::vector<ReceivedMessage>& m) {
    return !m.empty() && m.back().payload == "online" && m.back().retained;
  }, 5000000));

  proxy.Cut();  // the broker sees the client vanish without DISCONNECT
  REQUIRE(sub.WaitFor([](const std::vector<ReceivedMessage>& m) {
    return !m.empty() && m.back().payload == "offline" && m.back().topic == "status/gw";
  }, 10000000));
  CHECK(listener.WaitLost(20000000));  // keepalive 5 s notices it at the latest
  CHECK(!(*t)->IsConnected());

  // A later subscriber gets the retained offline.
  Subscriber late(broker.url(), "status/#");
  REQUIRE(late.Start(&err));
  REQUIRE(late.WaitForCount(1, 5000000));
  CHECK(late.Messages()[0].payload == "offline");
  CHECK(late.Messages()[0].retained);

  // After Restore the same transport connects again.
  REQUIRE(proxy.Restore());
  REQUIRE((*t)->Connect().ok());
  (*t)->Disconnect(1000000);
}

}  // namespace
}  // namespace sluice
