// End to end delivery with a real sluiced and a real Mosquitto: online
// delivery, a link cut by a TCP proxy, a broker restart, a broker that is
// down at start (CONTRACT.md "Upstream payloads", "Guarantees"). Every case
// runs once per MQTT client (`client = "mosquitto"` and `"paho"`).
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <string>

#include "tests/integration/it_support.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace testing {
namespace {

const std::string kStatusTopic = std::string("sluice/") + kAgent + "/status";

bool ExitedZero(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string MqttUrl(int port) { return "mqtt://127.0.0.1:" + std::to_string(port); }

// Connects to a push socket, waiting (bounded) for the listener.
int ConnectUnixWaiting(const std::string& path) {
  int fd = -1;
  WaitUntil([&] { return (fd = ConnectUnix(path)) >= 0; }, 10000000, 20000);
  return fd;
}

// The only retained message on the status topic, from a fresh subscriber.
std::string RetainedStatus(const std::string& url, bool* retained) {
  Subscriber s(url, kStatusTopic);
  if (!s.Start() || !s.WaitForCount(1, 10000000)) return "";
  ReceivedMessage m = s.Messages().front();
  *retained = m.retained;
  return m.payload;
}

size_t CountSensor(const SeqTracker& tr, const std::string& sensor) {
  size_t n = 0;
  for (const auto& kv : tr.events()) n += kv.second.sensor == sensor;
  return n;
}

// Waits until the ring stops growing (producers stopped) and returns it.
DbSnapshot SettledDb(const std::string& data_dir) {
  DbSnapshot last = ReadBufferDb(data_dir);
  for (int i = 0; i < 50; ++i) {
    SleepMs(200);
    DbSnapshot now = ReadBufferDb(data_dir);
    if (now.ok && last.ok && now.max_seq == last.max_seq) return now;
    last = now;
  }
  return last;
}

void PrintDelivery(const char* what, const SeqTracker& tr, uint64_t max_seq) {
  WARN(what << ": committed seq 1.." << max_seq << ", distinct upstream " << tr.Distinct()
            << ", duplicates " << tr.duplicates() << ", out-of-order first arrivals "
            << tr.out_of_order() << "; duplicated seqs: " << tr.DuplicateRanges());
}

// The MQTT client of this run (GENERATE: each case runs with both).
std::string EachClient() {
  const std::string client = GENERATE(as<std::string>(), "mosquitto", "paho");
  UNSCOPED_INFO("client = " << client);
  return client;
}

// spec's configuration with `client` in its [[upstream]] (the last table).
std::string ConfigWithClient(const ConfigSpec& spec, const std::string& client) {
  return spec.ToToml() + "client = \"" + client + "\"\n";
}

}  // namespace

TEST_CASE("online delivery: every committed seq arrives once, in order", "[integration]") {
  const std::string client = EachClient();
  TempDir dir;
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));

  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  const std::string sock = dir.Join("push.sock");
  spec.sensors = {SimulatedSensor("sim.temp", "50ms", "C"), PushSensor("ingest", "unix://" + sock)};
  spec.upstream_url = MqttUrl(broker.port());
  REQUIRE(WriteFile(dir.Join("sluiced.toml"), ConfigWithClient(spec, client)));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));
  REQUIRE(d.Start(&err));

  // 200 readings over a unix stream socket; even ones carry a timestamp.
  const int64_t base_ts = 1764075600000000;
  const int kLines = 200;
  int fd = ConnectUnixWaiting(sock);
  REQUIRE(fd >= 0);
  std::string lines;
  for (int i = 0; i < kLines; ++i) {
    lines += "push.a " + std::to_string(i) + ".5";
    if (i % 2 == 0) lines += " " + std::to_string(base_ts + i);
    lines += "\n";
  }
  REQUIRE(SendAll(fd, lines));
  close(fd);

  SeqTracker tr(kStatusTopic);
  REQUIRE(sub.WaitFor(
      [&](const std::vector<ReceivedMessage>& m) {
        tr.Feed(m);
        return CountSensor(tr, "push.a") >= static_cast<size_t>(kLines) &&
               CountSensor(tr, "sim.temp") >= 5;
      },
      30000000));
  bool retained = false;
  CHECK(RetainedStatus(broker.url(), &retained) == "online");
  CHECK(retained);

  CHECK(ExitedZero(d.Terminate()));
  DbSnapshot db = ReadBufferDb(spec.data_dir, true);
  REQUIRE(db.ok);
  INFO("db rows " << db.rows << " max " << db.max_seq << " cursor " << db.cursor);
  CHECK(db.min_seq == 1);
  CHECK(db.rows == db.max_seq);  // gap-free
  CHECK(db.meta_next_seq == db.max_seq + 1);
  CHECK(ReadSeqReservation(spec.data_dir) >= db.max_seq);
  // A clean shutdown waits for acks: the cursor covers what was in flight.
  CHECK(db.cursor >= CountSensor(tr, "push.a"));
  REQUIRE(tr.WaitCovers(sub, 1, db.cursor, 10000000));
  CHECK(tr.MaxSeen() <= db.max_seq);
  CHECK(tr.duplicates() == 0);
  CHECK(tr.out_of_order() == 0);
  CHECK(tr.bad_payloads() == 0);

  retained = false;
  CHECK(RetainedStatus(broker.url(), &retained) == "offline");
  CHECK(retained);
  std::vector<std::string> statuses;
  for (const auto& m : sub.Messages()) {
    if (m.topic == kStatusTopic) statuses.push_back(m.payload);
  }
  REQUIRE(statuses.size() >= 2);
  CHECK(statuses.front() == "online");
  CHECK(statuses.back() == "offline");

  // Fields exactly as CONTRACT.md, and what the ring committed.
  const std::set<std::string> keys = {"agent", "seq", "sensor", "ts_us", "value", "unit", "quality"};
  for (const auto& kv : tr.events()) {
    const EventJson& e = kv.second;
    INFO("seq " << kv.first);
    CHECK(e.keys == keys);
    CHECK(e.agent == kAgent);
    CHECK(e.quality == "good");
    REQUIRE(db.events.count(kv.first) == 1);
    CHECK(db.events[kv.first].sensor == e.sensor);
    CHECK(db.events[kv.first].ts_us == e.ts_us);
    if (e.sensor == "sim.temp") {
      CHECK(e.unit == "C");
      CHECK(e.value >= 20.0);
      CHECK(e.value <= 90.0);
    } else {
      REQUIRE(e.sensor == "push.a");
      CHECK(e.unit == "");
      const double i = e.value - 0.5;
      CHECK(i == std::floor(i));
      if (static_cast<int64_t>(i) % 2 == 0) CHECK(e.ts_us == base_ts + static_cast<int64_t>(i));
    }
  }

  // Restart on the same data_dir: what was committed but not yet sent
  // arrives, seq continues, and a clean shutdown left no duplicate.
  const uint64_t n1 = db.max_seq;
  REQUIRE(d.Start(&err));
  REQUIRE(tr.WaitCovers(sub, 1, n1, 20000000));
  fd = ConnectUnixWaiting(sock);
  REQUIRE(fd >= 0);
  REQUIRE(SendAll(fd, "push.b 1\npush.b 2\npush.b 3\n"));
  close(fd);
  REQUIRE(sub.WaitFor(
      [&](const std::vector<ReceivedMessage>& m) {
        tr.Feed(m);
        return CountSensor(tr, "push.b") >= 3;
      },
      20000000));
  CHECK(ExitedZero(d.Terminate()));
  DbSnapshot db2 = ReadBufferDb(spec.data_dir);
  REQUIRE(db2.ok);
  CHECK(db2.max_seq > n1);
  CHECK(db2.rows == db2.max_seq);
  REQUIRE(tr.WaitCovers(sub, 1, db2.cursor, 10000000));
  CHECK(tr.duplicates() == 0);
  CHECK(tr.out_of_order() == 0);
  PrintDelivery(("online delivery, " + client).c_str(), tr, db2.max_seq);
}

TEST_CASE("link cut: the backlog drains in order with no gap", "[integration]") {
  const std::string client = EachClient();
  TempDir dir;
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());

  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  const std::string sock = dir.Join("push.sock");
  spec.sensors = {PushSensor("ingest", "unix://" + sock)};
  spec.upstream_url = MqttUrl(proxy.port());
  spec.max_inflight = 64;
  REQUIRE(WriteFile(dir.Join("sluiced.toml"), ConfigWithClient(spec, client)));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));
  REQUIRE(d.Start(&err));

  Pusher pusher(sock, "cut.s", 2000);
  pusher.Start();
  SeqTracker tr(kStatusTopic);
  REQUIRE(sub.WaitFor([&](const std::vector<ReceivedMessage>& m) {
    tr.Feed(m);
    return tr.Distinct() >= 300;
  }, 30000000));
  const size_t before_cut = sub.Count();
  for (int cut = 0; cut < 2; ++cut) {
    proxy.Cut();
    const uint64_t at_cut = ReadBufferDb(spec.data_dir).max_seq;
    SleepMs(1200);  // ingest goes on while the link is down
    CHECK(ReadBufferDb(spec.data_dir).max_seq > at_cut);
    REQUIRE(proxy.Restore());
    SleepMs(800);
  }
  pusher.Stop();
  DbSnapshot db = SettledDb(spec.data_dir);
  REQUIRE(db.ok);
  CHECK(db.rows == db.max_seq);
  const bool covered = tr.WaitCovers(sub, 1, db.max_seq, 60000000);
  auto missing = tr.Missing(1, db.max_seq);
  INFO("missing " << missing.size() << (missing.empty() ? 0 : missing.front()));
  REQUIRE(covered);
  const int reconnects = proxy.accepted() - 1;
  PrintDelivery(("link cut, " + client).c_str(), tr, db.max_seq);
  WARN("link cut, " << client << ": reconnects " << reconnects << ", bound max_inflight x reconnects = "
                               << spec.max_inflight * reconnects);
  CHECK(reconnects >= 2);
  CHECK(tr.MaxSeen() == db.max_seq);
  CHECK(tr.out_of_order() == 0);
  CHECK(tr.reused() == 0);
  CHECK(tr.bad_payloads() == 0);
  CHECK(tr.DuplicatesFrom(0, before_cut) == 0);  // only after a reconnect
  CHECK(tr.duplicates() <= static_cast<uint64_t>(spec.max_inflight * reconnects));
  CHECK(ExitedZero(d.Terminate()));
}

TEST_CASE("broker restart mid-stream: no gap after the drain", "[integration]") {
  const std::string client = EachClient();
  TempDir dir;
  MosquittoBroker::Options bo;
  bo.persistence = true;  // the subscriber's session and queue survive
  MosquittoBroker broker(bo);
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber::Options so;
  so.url = broker.url();
  so.topic_filter = "sluice/#";
  so.client_id = "it-restart-sub";
  so.clean_session = false;
  so.auto_reconnect = true;
  Subscriber sub(so);
  REQUIRE(sub.Start(&err));

  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  const std::string sock = dir.Join("push.sock");
  spec.sensors = {PushSensor("ingest", "unix://" + sock)};
  spec.upstream_url = MqttUrl(broker.port());
  REQUIRE(WriteFile(dir.Join("sluiced.toml"), ConfigWithClient(spec, client)));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));
  REQUIRE(d.Start(&err));

  Pusher pusher(sock, "restart.s", 2000);
  pusher.Start();
  SeqTracker tr(kStatusTopic);
  for (int round = 0; round < 2; ++round) {
    const size_t want = tr.Distinct() + 300;
    REQUIRE(sub.WaitFor([&](const std::vector<ReceivedMessage>& m) {
      tr.Feed(m);
      return tr.Distinct() >= want;
    }, 30000000));
    REQUIRE(broker.Restart(&err));
    REQUIRE(WaitUntil([&] { return sub.connected(); }, 20000000));
  }
  SleepMs(500);
  pusher.Stop();
  DbSnapshot db = SettledDb(spec.data_dir);
  REQUIRE(db.ok);
  CHECK(db.rows == db.max_seq);
  const bool covered = tr.WaitCovers(sub, 1, db.max_seq, 60000000);
  INFO("missing " << tr.Missing(1, db.max_seq).size());
  REQUIRE(covered);
  PrintDelivery(("broker restart, " + client).c_str(), tr, db.max_seq);
  CHECK(tr.MaxSeen() == db.max_seq);
  CHECK(tr.reused() == 0);
  CHECK(tr.bad_payloads() == 0);
  CHECK(tr.out_of_order() == 0);
  // No bound on duplicates here: besides sluiced's resends after each
  // reconnect (at most max_inflight), the restarted broker redelivers its
  // persisted queue to the persistent-session subscriber, which counts too.
  CHECK(ExitedZero(d.Terminate()));
}

TEST_CASE("broker down at start: readings are buffered, then delivered", "[integration]") {
  const std::string client = EachClient();
  TempDir dir;
  MosquittoBroker::Options bo;
  bo.persistence = true;
  MosquittoBroker broker(bo);
  std::string err;
  // Register a persistent subscriber session, then take the broker down:
  // whatever sluiced publishes once it is back is queued for it.
  REQUIRE(broker.Start(&err));
  Subscriber::Options so;
  so.url = broker.url();
  so.topic_filter = "sluice/#";
  so.client_id = "it-down-sub";
  so.clean_session = false;
  {
    Subscriber first(so);
    REQUIRE(first.Start(&err));
    first.Stop();
  }
  broker.Stop();

  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  const std::string sock = dir.Join("push.sock");
  spec.sensors = {PushSensor("ingest", "unix://" + sock)};
  spec.upstream_url = MqttUrl(broker.port());
  REQUIRE(WriteFile(dir.Join("sluiced.toml"), ConfigWithClient(spec, client)));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));
  REQUIRE(d.Start(&err));  // a dead broker is normal

  const int kLines = 300;
  int fd = ConnectUnixWaiting(sock);
  REQUIRE(fd >= 0);
  std::string lines;
  for (int i = 0; i < kLines; ++i) lines += "down.s " + std::to_string(i) + "\n";
  REQUIRE(SendAll(fd, lines));
  close(fd);
  REQUIRE(WaitUntil([&] { return ReadBufferDb(spec.data_dir).rows >= kLines; }, 20000000, 50000));
  DbSnapshot db = ReadBufferDb(spec.data_dir);
  CHECK(db.rows == static_cast<uint64_t>(kLines));
  CHECK(db.max_seq == static_cast<uint64_t>(kLines));
  CHECK(db.cursor == 0);
  CHECK(d.Alive());
  // The uplink reports the dead broker and keeps retrying.
  CHECK(WaitUntil([&] { return d.Log().find("WARN uplink") != std::string::npos; }, 10000000));

  REQUIRE(broker.Start(&err));
  Subscriber sub(so);
  REQUIRE(sub.Start(&err));
  SeqTracker tr(kStatusTopic);
  const bool covered = tr.WaitCovers(sub, 1, kLines, 30000000);
  INFO("missing " << tr.Missing(1, kLines).size());
  REQUIRE(covered);
  PrintDelivery("broker down at start", tr, kLines);
  CHECK(tr.duplicates() == 0);
  CHECK(tr.out_of_order() == 0);
  CHECK(tr.MaxSeen() == static_cast<uint64_t>(kLines));
  for (const auto& kv : tr.events()) {
    CHECK(kv.second.sensor == "down.s");
    CHECK(kv.second.value == static_cast<double>(kv.first - 1));  // line i got seq i+1
  }
  CHECK(ExitedZero(d.Terminate()));
  CHECK(ReadBufferDb(spec.data_dir).cursor == static_cast<uint64_t>(kLines));
}

}  // namespace testing
}  // namespace sluice
