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
//   a few KiB (kSlackBytes), for both transports. Paho C 1.3.12 leaks every
//   PUBLISH command still queued when a client that lost its connection is
//   destroyed (~17 KiB per cut here); the Paho transport works around it
//   with an in-memory persistence store (agent/uplink/paho_transport.cpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

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

// Heap in use, after letting the client's threads finish what they were
// doing: the least of several samples, so that a buffer some thread (the
// proxy's pumps, a client's ending thread) still holds for a moment is not
// counted, while a leak, present in every sample, is.
size_t SettledHeap() {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  size_t least = testing::HeapInUseBytes();
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    least = std::min(least, testing::HeapInUseBytes());
  }
  return least;
}

// Runs `cuts` rounds of: connect, one acked probe, pause the broker, hand
// over max_inflight publishes, cut, resume, wait for the loss, restore.
// Returns heap growth between round 10 and the last round (0 if cuts < 10),
// each measured once connected again after the cut and acked: a transport
// frees the client of the lost connection on the next Connect(), so the
// old client's (timing-dependent) queue is gone by then.
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
  const std::vector<std::string> topics = {"mem/0", "mem/1", "mem/2", "mem/3",
                                           "mem/4", "mem/5", "mem/6", "mem/7"};
  size_t heap_at_10 = 0;
  size_t heap_end = 0;
  uint64_t tag = 0;
  uint64_t probes = 0;
  // Connects and gets one probe acked. Only the probes were ever
  // acknowledged: nothing queued before a loss was sent on a later
  // connection.
  auto connect_and_probe = [&] {
    REQUIRE(tr.Connect().ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    REQUIRE(listener.acked() == probes);
    REQUIRE(tr.Publish("mem/ok", "1", 1, 1, false, ++tag).ok());
    REQUIRE(listener.WaitAcked(++probes, 5000000));
  };
  for (int cut = 1; cut <= cuts; ++cut) {
    INFO("cut " << cut);
    connect_and_probe();
    if (cut == 11) heap_at_10 = SettledHeap();

    broker.Pause();
    // One assertion per round, not per publish: Catch2's bookkeeping stays
    // out of the heap figures.
    size_t queued = 0;
    for (size_t i = 0; i < o.max_inflight; ++i) {
      queued += tr.Publish(topics[i % topics.size()], payload.data(), payload.size(), 1, false,
                           ++tag)
                    .ok();
    }
    REQUIRE(queued == o.max_inflight);
    proxy.Cut();
    broker.Resume();
    REQUIRE(listener.WaitLost(cut, 10000000));
    CHECK(!tr.IsConnected());
    REQUIRE(proxy.Restore());
  }
  connect_and_probe();
  heap_end = SettledHeap();
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

// The bound on heap growth from cut 10 to cut 30. Measured with glibc's
// per-thread caches off (CTest sets GLIBC_TUNABLES=glibc.malloc.tcache_count=0:
// a thread's tcache holds freed chunks that mallinfo2 still counts as in use,
// which made the figure wander by 10 KiB): 0-2.2 KiB for libmosquitto,
// 1.5-3.8 KiB for Paho (valgrind: ~60 B per cut, one node of Paho's heap
// tracker). A queued publish costs ~250 B (120 B payload, topic, command), so
// 8 KiB over 20 cuts catches a leak of two publishes per cut; Paho's old leak
// was ~17 KiB per cut (340 KiB here). Without that setting (a run by hand)
// the figure is only checked against the window-sized bound.
constexpr double kSlackBytes = 8 * 1024;
constexpr double kSlackBytesWithTcache = 64 * 1024;

double Slack() {
  const char* t = std::getenv("GLIBC_TUNABLES");
  if (t != nullptr && std::strstr(t, "glibc.malloc.tcache_count=0") != nullptr) {
    return kSlackBytes;
  }
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return kSlackBytes;  // the sanitizer's allocator counts exactly what is allocated
#else
  WARN("GLIBC_TUNABLES=glibc.malloc.tcache_count=0 is not set: checking the looser bound");
  return kSlackBytesWithTcache;
#endif
}

TEST_CASE("mosquitto: 30 link cuts with max_inflight queued: memory does not grow",
          "[transport][memory][mosquitto]") {
  CHECK(CutRounds(&NewMosquittoTransport, "mosquitto", 30) < Slack());
}

// Paho C leaked every publish still queued in a client destroyed after a
// loss; the transport's in-memory persistence store owns them instead.
TEST_CASE("paho: 30 link cuts with max_inflight queued: memory does not grow",
          "[transport][memory][paho]") {
  CHECK(CutRounds(&NewPahoTransport, "paho", 30) < Slack());
}

}  // namespace
}  // namespace sluice
