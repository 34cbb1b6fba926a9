// A broker that accepts every connection (CONNACK and all) and drops it
// 100 ms later: the uplink must back off as it does for refused connects,
// not start its backoff over at every CONNACK. Both MQTT clients, a real
// Mosquitto behind a dropping loopback proxy.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <thread>

#include "agent/uplink/uplink.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/support.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace {

using testing::MosquittoBroker;
using testing::TcpProxy;
using testing::TempDir;

// The most attempts a capped doubling backoff (jitter [base/2, base]) allows
// within window_us, counting the first one at 0 and ignoring the time each
// connection lasts: a bound, whatever the jitter.
int MaxAttempts(int64_t initial_us, int64_t max_us, int64_t window_us) {
  int attempts = 1;
  int64_t t = 0;
  for (int64_t base = initial_us;; base = std::min(base * 2, max_us)) {
    t += base / 2;
    if (t > window_us) return attempts;
    ++attempts;
  }
}

TEST_CASE("a broker that drops every connection is redialled ever more slowly", "[uplink]") {
  const MqttClient client = GENERATE(MqttClient::kMosquitto, MqttClient::kPaho);
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  TcpProxy proxy(broker.port());
  proxy.set_drop_after_us(100000);
  REQUIRE(proxy.Start());

  TempDir dir;
  RingOptions ro;
  ro.data_dir = dir.path();
  ro.durability = Durability::kOff;
  ro.upstreams = {"cloud"};
  auto ring = Ring::Open(ro, SystemClock::Get());
  REQUIRE(ring.ok());

  UplinkOptions c;
  c.name = "cloud";
  c.url = proxy.url();
  c.broker = ParseBrokerAddress(c.url).value();
  c.client = client;
  c.keepalive_s = 5;
  c.connect_timeout_us = 2000000;
  c.reconnect_min_us = 100000;
  c.reconnect_max_us = 2000000;
  constexpr int64_t kWindowUs = 5000000;
  {
    Uplink up(c, "gw-001", 0, **ring, SystemClock::Get());
    REQUIRE(up.Start().ok());
    std::this_thread::sleep_for(std::chrono::microseconds(kWindowUs));
    const UplinkStats s = up.Stats();
    up.Stop(0);
    // The uplink's attempts: failed ones plus successful connects (the first
    // + reconnects; +1 overcounts by one if it never connected: stricter).
    // The proxy may see more TCP connections: Paho retries within an attempt.
    const uint64_t attempts = s.connect_failures + s.reconnects + 1;
    // Before the fix every CONNACK reset the backoff: ~one attempt per
    // 100 ms up + 50..100 ms delay, over 20 in 5 s.
    const int bound = MaxAttempts(c.reconnect_min_us, c.reconnect_max_us, kWindowUs);
    INFO("client " << (client == MqttClient::kPaho ? "paho" : "mosquitto") << ": " << attempts
                   << " attempts in 5 s (" << s.reconnects << " reconnects), at most " << bound
                   << " allowed");
    CHECK(attempts <= static_cast<uint64_t>(bound));
    CHECK(attempts >= 3);  // it does keep trying
  }
  (void)(*ring)->Stop();
}

}  // namespace
}  // namespace sluice
