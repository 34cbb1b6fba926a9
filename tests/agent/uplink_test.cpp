// The uplink with a real ring, a real Mosquitto and a real subscriber:
// online delivery, link cuts, broker restarts, a broker down at start,
// flatbuffers batches and QoS 0.
#include "agent/uplink/uplink.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <thread>

#include "agent/payload/payload.h"
#include "buffer/codec.h"
#include "schemas/sluice_generated.h"
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
using testing::TempDir;

constexpr const char* kAgent = "gw-001";

struct RingFixture {
  TempDir dir;
  std::unique_ptr<Ring> ring;

  explicit RingFixture(uint64_t max_events = 1000000) {
    RingOptions o;
    o.data_dir = dir.path();
    o.max_events = max_events;
    o.durability = Durability::kOff;
    o.commit_interval_us = 5000;
    o.upstreams = {"cloud"};
    auto r = Ring::Open(o, SystemClock::Get());
    REQUIRE(r.ok());
    ring = std::move(*r);
  }
  ~RingFixture() { (void)ring->Stop(); }

  // Appends readings (every 50th an alert) and waits for their commit.
  void Append(int n) {
    for (int i = 0; i < n; ++i) {
      const uint64_t k = next_++;
      Record rec;
      rec.ts_us = 1764075600000000 + static_cast<int64_t>(k);
      if (k % 50 == 0) {
        Alert a;
        a.rule = "rule_" + std::to_string(k % 7);
        a.state = "firing";
        a.severity = "critical";
        a.ts_us = rec.ts_us;
        a.value = k * 0.25;
        a.message = "alert \"" + std::to_string(k) + "\"";
        a.labels = {{"site", "plant-1"}};
        rec.kind = static_cast<int>(EventKind::kAlert);
        rec.priority = kAlertPriority;
        rec.sensor = a.rule;
        rec.body = EncodeAlert(a);
      } else {
        Reading r;
        r.sensor = "sensor." + std::to_string(k % 5);
        r.ts_us = rec.ts_us;
        r.value = k * 0.5;
        r.unit = "C";
        rec.kind = static_cast<int>(EventKind::kReading);
        rec.priority = kReadingPriority;
        rec.sensor = r.sensor;
        rec.body = EncodeReading(r);
      }
      REQUIRE(ring->Append(std::move(rec), 5000000).ok());
    }
    REQUIRE(ring->Flush().ok());
  }

 private:
  uint64_t next_ = 1;
};

UplinkOptions Config(const std::string& url) {
  UplinkOptions c;
  c.name = "cloud";
  c.url = url;
  c.broker = ParseBrokerAddress(url).value();
  c.max_inflight = 64;
  c.keepalive_s = 5;
  c.connect_timeout_us = 2000000;
  c.reconnect_min_us = 50000;
  c.reconnect_max_us = 400000;
  return c;
}

// Seq of an event message (json or a batch: every seq in it); none for
// status messages.
std::vector<uint64_t> SeqsOf(const ReceivedMessage& m) {
  std::vector<uint64_t> out;
  if (m.topic.find("/status") != std::string::npos) return out;
  if (!m.payload.empty() && m.payload[0] == '{') {
    const size_t p = m.payload.find("\"seq\":");
    if (p != std::string::npos) out.push_back(std::stoull(m.payload.substr(p + 6)));
    return out;
  }
  flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(m.payload.data()), m.payload.size());
  if (!fb::VerifyBatchBuffer(v)) return out;
  for (const fb::Event* e : *fb::GetBatch(m.payload.data())->events()) out.push_back(e->seq());
  return out;
}

struct Delivery {
  std::vector<uint64_t> first_order;  // seqs in order of first arrival
  size_t duplicates = 0;
  uint64_t max_seq = 0;
};

Delivery Analyse(const std::vector<ReceivedMessage>& msgs) {
  Delivery d;
  std::map<uint64_t, int> seen;
  for (const auto& m : msgs) {
    for (uint64_t s : SeqsOf(m)) {
      if (seen[s]++ > 0) {
        d.duplicates++;
      } else {
        d.first_order.push_back(s);
      }
      d.max_seq = std::max(d.max_seq, s);
    }
  }
  return d;
}

// Every seq 1..n arrived, first arrivals in seq order.
void CheckComplete(const Delivery& d, uint64_t n) {
  REQUIRE(d.first_order.size() == n);
  for (uint64_t i = 0; i < n; ++i) {
    if (d.first_order[i] != i + 1) FAIL("first arrival #" << i << " is seq " << d.first_order[i]);
  }
}

// Waits until every seq 1..n has arrived. The predicate runs under the
// subscriber's lock on each arrival, so it only looks at new messages.
bool WaitAllSeqs(const Subscriber& sub, uint64_t n, int64_t timeout_us) {
  auto seen = std::make_shared<std::vector<bool>>(n + 1);
  auto state = std::make_shared<std::pair<size_t, uint64_t>>(0, 0);  // scanned, count
  return sub.WaitFor([=](const std::vector<ReceivedMessage>& m) {
    if (state->first > m.size()) *state = {0, 0}, seen->assign(n + 1, false);  // cleared
    for (; state->first < m.size(); ++state->first) {
      for (uint64_t s : SeqsOf(m[state->first])) {
        if (s <= n && !(*seen)[s]) {
          (*seen)[s] = true;
          ++state->second;
        }
      }
    }
    return state->second == n;
  }, timeout_us);
}

TEST_CASE("online delivery: every event in seq order, contract JSON, status", "[uplink]") {
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  RingFixture rf;
  const int kN = 2000;
  rf.Append(kN / 2);

  Uplink up(Config("mqtt://127.0.0.1:" + std::to_string(broker.port())), kAgent, 0, *rf.ring,
            SystemClock::Get());
  REQUIRE(up.Start().ok());
  rf.Append(kN / 2);  // some while connected
  REQUIRE(WaitAllSeqs(sub, kN, 30000000));
  REQUIRE(testing::WaitUntil([&] { return rf.ring->Cursor(0) == kN; }, 5000000));

  const auto msgs = sub.Messages();
  const Delivery d = Analyse(msgs);
  CheckComplete(d, kN);
  CHECK(d.duplicates == 0);
  // Status first, then events with the contract's JSON and topics.
  REQUIRE(!msgs.empty());
  CHECK(msgs[0].topic == "sluice/gw-001/status");
  CHECK(msgs[0].payload == "online");
  auto reader = rf.ring->NewReader();
  REQUIRE(reader.ok());
  std::vector<StoredEvent> stored;
  REQUIRE((*reader)->ReadAfter(0, kN, &stored).ok());
  REQUIRE(stored.size() == static_cast<size_t>(kN));
  std::string json;
  size_t next = 0;
  for (const auto& m : msgs) {
    if (SeqsOf(m).empty()) continue;
    const StoredEvent& e = stored[next++];
    REQUIRE(EventToJson(kAgent, e, &json).ok());
    REQUIRE(m.payload == json);
    if (e.kind == static_cast<int>(EventKind::kAlert)) {
      REQUIRE(m.topic == "sluice/gw-001/alerts/" + e.sensor);
    } else {
      REQUIRE(m.topic == "sluice/gw-001/" + e.sensor);
    }
    CHECK(m.qos == 1);
  }
  const UplinkStats s = up.Stats();
  CHECK(s.connected);
  CHECK(s.acked_seq == kN);
  CHECK(s.backlog == 0);
  CHECK(s.sent_events == static_cast<uint64_t>(kN));
  CHECK(s.acked_events == static_cast<uint64_t>(kN));
  CHECK(s.reconnects == 0);

  up.Stop(2000000);
  CHECK(!up.Stats().connected);
  REQUIRE(sub.WaitFor([](const std::vector<ReceivedMessage>& m) {
    return m.back().topic == "sluice/gw-001/status" && m.back().payload == "offline";
  }, 5000000));

  // A new uplink resumes from the ring's cursor: nothing acked is resent.
  sub.Clear();
  rf.Append(10);
  Uplink again(Config("mqtt://127.0.0.1:" + std::to_string(broker.port())), kAgent, 0,
               *rf.ring, SystemClock::Get());
  REQUIRE(again.Start().ok());
  REQUIRE(sub.WaitFor([&](const std::vector<ReceivedMessage>& m) {
    return Analyse(m).max_seq == kN + 10;
  }, 10000000));
  const Delivery d2 = Analyse(sub.Messages());
  REQUIRE(d2.first_order.size() == 10);
  CHECK(d2.first_order.front() == kN + 1);
  again.Stop(1000000);
}

TEST_CASE("link cut mid-drain: backlog drains in order, no gap", "[uplink]") {
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());
  RingFixture rf;
  const uint64_t kN = 20000;
  rf.Append(static_cast<int>(kN));

  UplinkOptions cfg = Config(proxy.url());
  Uplink up(cfg, kAgent, 0, *rf.ring, SystemClock::Get());
  REQUIRE(up.Start().ok());
  const int kCuts = 3;
  for (int cut = 1; cut <= kCuts; ++cut) {
    const size_t target = kN * cut / (kCuts + 1);
    REQUIRE(sub.WaitFor([&](const std::vector<ReceivedMessage>& m) { return m.size() >= target; },
                        30000000));
    proxy.Cut();
    REQUIRE(testing::WaitUntil([&] { return !up.Stats().connected; }, 15000000));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    REQUIRE(proxy.Restore());
  }
  REQUIRE(WaitAllSeqs(sub, kN, 60000000));
  const Delivery d = Analyse(sub.Messages());
  CheckComplete(d, kN);
  CHECK(d.duplicates <= kCuts * cfg.max_inflight);
  // Everything may have arrived before the last cut: its reconnect can
  // still be under way.
  CHECK(testing::WaitUntil(
      [&] { return up.Stats().reconnects == static_cast<uint64_t>(kCuts); }, 15000000));
  CHECK(up.Stats().reconnects == static_cast<uint64_t>(kCuts));
  REQUIRE(testing::WaitUntil([&] { return rf.ring->Cursor(0) == kN; }, 5000000));
  WARN("link cuts: " << d.duplicates << " duplicates over " << kCuts << " cuts");
  up.Stop(1000000);
}

TEST_CASE("broker restart mid-drain: delivery resumes, no gap", "[uplink]") {
  MosquittoBroker::Options bo;
  bo.persistence = true;  // keeps the subscriber's session across the restart
  MosquittoBroker broker(bo);
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber::Options so;
  so.url = broker.url();
  so.topic_filter = "sluice/#";
  so.client_id = "restart-sub";
  so.clean_session = false;
  so.auto_reconnect = true;
  Subscriber sub(so);
  REQUIRE(sub.Start(&err));
  RingFixture rf;
  const uint64_t kN = 10000;
  rf.Append(static_cast<int>(kN));

  UplinkOptions cfg = Config("mqtt://127.0.0.1:" + std::to_string(broker.port()));
  Uplink up(cfg, kAgent, 0, *rf.ring, SystemClock::Get());
  REQUIRE(up.Start().ok());
  REQUIRE(sub.WaitFor([&](const std::vector<ReceivedMessage>& m) { return m.size() >= kN / 3; },
                      30000000));
  broker.Stop();
  REQUIRE(testing::WaitUntil([&] { return !up.Stats().connected; }, 15000000));
  REQUIRE(broker.Restart(&err));
  const bool all = WaitAllSeqs(sub, kN, 60000000);
  if (!all) {
    const Delivery partial = Analyse(sub.Messages());
    WARN("got " << partial.first_order.size() << " of " << kN << ", acked "
                << up.Stats().acked_seq << ", sub connected " << sub.connected()
                << "\n" << broker.log());
  }
  REQUIRE(all);
  const Delivery d = Analyse(sub.Messages());
  CheckComplete(d, kN);
  // The uplink resends at most one window after the reconnect. What the
  // subscriber sees on top of that is the restarted broker redelivering its
  // own unacknowledged messages to it (the subscriber's session survives
  // the restart), which measures the broker, not sluiced.
  const UplinkStats st = up.Stats();
  INFO("subscriber duplicates " << d.duplicates << ", uplink sent " << st.sent_events);
  CHECK(st.sent_events - kN <= cfg.max_inflight);
  CHECK(st.reconnects >= 1);
  up.Stop(1000000);
}

TEST_CASE("backlog counts what the ring still holds, not what it evicted", "[uplink]") {
  RingFixture rf(100);
  // Nobody listens on the port: nothing is ever sent.
  Uplink up(Config("mqtt://127.0.0.1:" + std::to_string(testing::FreeLoopbackPort())), kAgent, 0,
            *rf.ring, SystemClock::Get());
  REQUIRE(up.Start().ok());
  rf.Append(1000);
  const RingStats rs = rf.ring->Stats();
  REQUIRE(rs.events <= 100);
  REQUIRE(rs.last_seq == 1000);
  CHECK(up.Stats().backlog == rs.events);
  up.Stop(1000000);
}

TEST_CASE("a broker down at start: events buffer, then arrive", "[uplink]") {
  const int port = testing::FreeLoopbackPort();
  // The proxy refuses connections until the subscriber is in place, so no
  // event can reach the broker before anyone listens.
  TcpProxy proxy(port);
  REQUIRE(proxy.Start());
  proxy.Cut();
  RingFixture rf;
  Uplink up(Config(proxy.url()), kAgent, 0, *rf.ring, SystemClock::Get());
  REQUIRE(up.Start().ok());
  rf.Append(300);
  REQUIRE(testing::WaitUntil([&] { return up.Stats().connect_failures >= 2; }, 10000000));
  UplinkStats s = up.Stats();
  CHECK(!s.connected);
  CHECK(s.backlog == 300);
  CHECK(!s.last_error.empty());

  MosquittoBroker::Options bo;
  bo.port = port;
  MosquittoBroker broker(bo);
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  REQUIRE(proxy.Restore());
  REQUIRE(WaitAllSeqs(sub, 300, 30000000));
  const Delivery d = Analyse(sub.Messages());
  CheckComplete(d, 300);
  CHECK(d.duplicates == 0);
  REQUIRE(testing::WaitUntil([&] { return up.Stats().backlog == 0; }, 5000000));
  up.Stop(1000000);
}

TEST_CASE("flatbuffers batches decode to every seq", "[uplink]") {
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  RingFixture rf;
  const uint64_t kN = 5050;
  rf.Append(static_cast<int>(kN));
  UplinkOptions cfg = Config("mqtt://127.0.0.1:" + std::to_string(broker.port()));
  cfg.format = PayloadFormat::kFlatbuffers;
  cfg.batch_max_events = 100;
  cfg.max_inflight = 8;
  Uplink up(cfg, kAgent, 0, *rf.ring, SystemClock::Get());
  const int64_t t0 = testing::MonoNowUs();
  REQUIRE(up.Start().ok());
  REQUIRE(WaitAllSeqs(sub, kN, 30000000));
  const int64_t dt = testing::MonoNowUs() - t0;
  WARN("flatbuffers: " << kN << " events in " << dt / 1000 << " ms, incl. connect");
  const auto msgs = sub.Messages();
  CheckComplete(Analyse(msgs), kN);
  for (const auto& m : msgs) {
    if (m.topic == "sluice/gw-001/status") continue;
    REQUIRE(m.topic == "sluice/gw-001/batch");
    flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(m.payload.data()), m.payload.size());
    REQUIRE(fb::VerifyBatchBuffer(v));
    const fb::Batch* b = fb::GetBatch(m.payload.data());
    CHECK(b->agent()->str() == kAgent);
    CHECK(b->events()->size() <= cfg.batch_max_events);
    for (const fb::Event* e : *b->events()) {
      if (e->kind() == fb::Kind::Alert) {
        REQUIRE(e->rule()->str() == "rule_" + std::to_string(e->seq() % 7));
        REQUIRE(e->labels()->size() == 1);
      } else {
        REQUIRE(e->sensor()->str() == "sensor." + std::to_string(e->seq() % 5));
        REQUIRE(e->value() == e->seq() * 0.5);
      }
    }
  }
  REQUIRE(testing::WaitUntil([&] { return rf.ring->Cursor(0) == kN; }, 5000000));
  CHECK(up.Stats().publishes >= kN / 100 + 1);
  up.Stop(1000000);
}

TEST_CASE("QoS 0: delivered and acked on hand-off", "[uplink]") {
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  RingFixture rf;
  rf.Append(500);
  UplinkOptions cfg = Config("mqtt://127.0.0.1:" + std::to_string(broker.port()));
  cfg.qos = 0;
  Uplink up(cfg, kAgent, 0, *rf.ring, SystemClock::Get());
  REQUIRE(up.Start().ok());
  REQUIRE(testing::WaitUntil([&] { return rf.ring->Cursor(0) == 500; }, 10000000));
  REQUIRE(WaitAllSeqs(sub, 500, 10000000));
  for (const auto& m : sub.Messages()) {
    if (!SeqsOf(m).empty()) REQUIRE(m.qos == 0);
  }
  up.Stop(1000000);
}

}  // namespace
}  // namespace sluice
