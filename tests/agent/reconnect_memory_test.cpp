// Repeated link losses while QoS 1 publishes are still queued inside the
// MQTT client, for both transports (libmosquitto and Paho).
// A real Mosquitto is paused (SIGSTOP) so nothing is acknowledged, a full
// window of max_inflight publishes is handed to the transport and the
// TcpProxy cuts the link at once, so most of them are still queued (not yet
// written) in Paho C when the connection drops.
//
// - "stale publishes": nothing handed over before a loss may be sent on the
//   next connection (it would arrive ahead of the uplink's resend from its
//   cursor and break seq order). Runs by default.
// - "memory": heap in use after 10 cuts and after 30 cuts must agree within
//   a small fixed slack. Runs by default for libmosquitto (mosquitto_destroy
//   frees what was queued). Hidden ([.]) for Paho while it fails: Paho C
//   1.3.12 leaks every PUBLISH command still queued when a client that lost
//   its connection is destroyed (~60-120 KiB per cut here); see the uplink
//   notes. Run it with: agent_reconnect_memory_test "[paho][memory]"
#include <catch2/catch.hpp>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "agent/uplink/transport.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/support.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace {

using testing::MosquittoBroker;
using testing::TcpProxy;

class CountingListener : public TransportListener {
 public:
  void OnConnectionLost(const std::string&) override {
    std::lock_guard<std::mutex> lock(mu_);
    lost_++;
    cv_.notify_all();
  }
  void OnPublishAcked(uint64_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    acked_++;
    cv_.notify_all();
  }
  bool WaitLost(int n, int64_t timeout_us) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::microseconds(timeout_us), [&] { return lost_ >= n; });
  }
  bool WaitAcked(uint64_t n, int64_t timeout_us) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::microseconds(timeout_us),
                        [&] { return acked_ >= n; });
  }
  uint64_t acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int lost_ = 0;
  uint64_t acked_ = 0;
};

using Factory = StatusOr<std::unique_ptr<Transport>> (*)(const TransportOptions&,
                                                          TransportListener*);

// Heap in use, after letting the client's threads finish what they were doing.
size_t SettledHeap() {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return testing::HeapInUseBytes();
}

// Runs `cuts` rounds of: connect, one acked probe, pause the broker, hand
// over max_inflight publishes, cut, resume, wait for the loss, restore.
// Returns heap growth between round 10 and the last round (0 if cuts < 10).
double CutRounds(Factory make, const char* name, int cuts) {
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());

  CountingListener listener;
  TransportOptions o;
  o.broker = ParseBrokerAddress(proxy.url()).value();
  o.client_id = "memory-test";
  o.keepalive_s = 5;
  o.connect_timeout_us = 3000000;
  o.max_inflight = 256;
  auto t = make(o, &listener);
  REQUIRE(t.ok());
  Transport& tr = **t;

  const std::string payload(120, 'x');
  size_t heap_at_10 = 0;
  uint64_t tag = 0;
  uint64_t probes = 0;
  for (int cut = 1; cut <= cuts; ++cut) {
    REQUIRE(tr.Connect().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // Only the probes were ever acknowledged: nothing queued before a loss
    // was sent on a later connection.
    INFO("cut " << cut);
    REQUIRE(listener.acked() == probes);
    REQUIRE(tr.Publish("mem/ok", "1", 1, 1, false, ++tag).ok());
    REQUIRE(listener.WaitAcked(++probes, 5000000));

    broker.Pause();
    for (size_t i = 0; i < o.max_inflight; ++i) {
      REQUIRE(tr.Publish("mem/" + std::to_string(i % 8), payload.data(), payload.size(), 1,
                         false, ++tag)
                  .ok());
    }
    proxy.Cut();
    broker.Resume();
    REQUIRE(listener.WaitLost(cut, 10000000));
    CHECK(!tr.IsConnected());
    REQUIRE(proxy.Restore());
    if (cut == 10) heap_at_10 = SettledHeap();
  }
  const size_t heap_end = SettledHeap();
  REQUIRE(tr.Connect().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(listener.acked() == probes);
  tr.Disconnect(1000000);
  if (cuts < 10) return 0;
  const double growth = static_cast<double>(heap_end) - static_cast<double>(heap_at_10);
  WARN(name << ": heap in use after 10 cuts: " << heap_at_10 << " B, after " << cuts
                                     << " cuts: " << heap_end << " B, growth "
                                     << growth / 1024 << " KiB (" << growth / (cuts - 10)
                                     << " B per cut)");
  return growth;
}

TEST_CASE("stale publishes: nothing queued before a loss is sent after it",
          "[transport][reconnect]") {
  SECTION("mosquitto") { CutRounds(&NewMosquittoTransport, "mosquitto", 5); }
  SECTION("paho") { CutRounds(&NewPahoTransport, "paho", 5); }
}

// 64 KiB: allocator noise, far below 20 cuts x 256 messages x ~200 B.
constexpr double kSlackBytes = 64 * 1024;

TEST_CASE("mosquitto: 30 link cuts with max_inflight queued: memory does not grow",
          "[transport][memory][mosquitto]") {
  CHECK(CutRounds(&NewMosquittoTransport, "mosquitto", 30) < kSlackBytes);
}

TEST_CASE("paho: 30 link cuts with max_inflight queued: memory does not grow",
          "[.][transport][memory][paho]") {
  CHECK(CutRounds(&NewPahoTransport, "paho", 30) < kSlackBytes);
}

}  // namespace
}  // namespace sluice
