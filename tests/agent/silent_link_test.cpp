// Links that go silent without closing: blackholed both ways or one way, or
// stalled in the middle of an MQTT packet (tests/support/tcp_proxy.h). No
// FIN, no RST, no socket error: the uplink must notice within 1.5 x
// keepalive (LinkWatchdog), say why in its stats, reconnect once the link
// is back and send again what was not acknowledged: every seq, first
// arrivals in seq order. Both MQTT clients, a real Mosquitto behind the
// proxy, with the smallest keepalive each takes (libmosquitto refuses less
// than 5 s, Paho takes 2 s) so that a case takes seconds.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/uplink/link_watchdog.h"
#include "agent/uplink/paho_inbound.h"
#include "agent/uplink/uplink.h"
#include "buffer/codec.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/subscriber.h"
#include "tests/support/support.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace {

using testing::MonoNowUs;
using testing::MosquittoBroker;
using testing::MqttFramer;
using testing::ReceivedMessage;
using testing::SilenceMode;
using testing::Subscriber;
using testing::TcpProxy;
using testing::TempDir;

int KeepaliveS(MqttClient c) { return c == MqttClient::kPaho ? 2 : 5; }
int64_t LimitUs(MqttClient c) { return KeepaliveS(c) * 1500000ll; }  // 1.5 x keepalive
// What the measurement itself adds: the uplink looks every 50 ms, the
// socket's last-receive time is sampled every 50-150 ms, this test polls
// every 10 ms, and the last ack came up to one feed interval before the
// link went silent.
constexpr int64_t kSlackUs = 300000;

const char* Name(MqttClient c) { return c == MqttClient::kPaho ? "paho" : "mosquitto"; }

const char* Name(SilenceMode m) {
  switch (m) {
    case SilenceMode::kBoth: return "blackhole both ways";
    case SilenceMode::kClientToBroker: return "blackhole client->broker";
    case SilenceMode::kBrokerToClient: return "blackhole broker->client";
    case SilenceMode::kStallMidPacket: return "stall mid-packet";
    case SilenceMode::kNone: break;
  }
  return "none";
}

// A ring fed one reading every `every_ms` by its own thread while running.
class Feed {
 public:
  Feed() {
    RingOptions o;
    o.data_dir = dir_.path();
    o.durability = Durability::kOff;
    o.commit_interval_us = 2000;
    o.upstreams = {"cloud"};
    auto r = Ring::Open(o, SystemClock::Get());
    REQUIRE(r.ok());
    ring_ = std::move(*r);
  }
  ~Feed() {
    Stop();
    (void)ring_->Stop();
  }
  void Append(int n) {
    for (int i = 0; i < n; ++i) {
      Reading r;
      r.sensor = "link.s";
      r.ts_us = 1764075600000000 + static_cast<int64_t>(appended_ + 1);
      r.value = static_cast<double>(appended_);
      r.unit = "C";
      Record rec;
      rec.ts_us = r.ts_us;
      rec.kind = static_cast<int>(EventKind::kReading);
      rec.priority = kReadingPriority;
      rec.sensor = r.sensor;
      rec.body = EncodeReading(r);
      if (!ring_->Append(std::move(rec), 5000000).ok()) return;
      ++appended_;
    }
    (void)ring_->Flush();
  }
  void Start(int every_ms) {
    thread_ = std::thread([this, every_ms] {
      while (!stop_) {
        Append(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(every_ms));
      }
    });
  }
  // Returns the number of readings committed (seq 1..n).
  uint64_t Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return appended_;
  }
  Ring& ring() { return *ring_; }

 private:
  TempDir dir_;
  std::unique_ptr<Ring> ring_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> appended_{0};
  std::thread thread_;
};

UplinkOptions Options(const TcpProxy& proxy, MqttClient client) {
  UplinkOptions c;
  c.name = "cloud";
  c.url = proxy.url();
  c.broker = ParseBrokerAddress(c.url).value();
  c.client = client;
  c.max_inflight = 32;
  c.keepalive_s = KeepaliveS(client);
  c.connect_timeout_us = 2000000;  // Paho times out 1 s connects even on loopback
  c.reconnect_min_us = 50000;
  c.reconnect_max_us = 300000;
  return c;
}

// Waits (bounded) until pred(stats) holds; false on timeout.
template <typename Pred>
bool WaitStats(const Uplink& up, Pred pred, int64_t timeout_us, UplinkStats* out = nullptr) {
  const int64_t end = MonoNowUs() + timeout_us;
  for (;;) {
    UplinkStats s = up.Stats();
    if (pred(s)) {
      if (out != nullptr) *out = s;
      return true;
    }
    if (MonoNowUs() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Seqs 1..n each arrived, first arrivals in seq order (JSON payloads).
void CheckEverySeqInOrder(const std::vector<ReceivedMessage>& msgs, uint64_t n) {
  std::map<uint64_t, int> seen;
  uint64_t expect = 1;
  for (const ReceivedMessage& m : msgs) {
    const size_t p = m.payload.find("\"seq\":");
    if (m.topic.find("/status") != std::string::npos || p == std::string::npos) continue;
    const uint64_t seq = std::stoull(m.payload.substr(p + 6));
    if (seen[seq]++ > 0) continue;
    if (seq != expect) FAIL("first arrival of seq " << seq << " where seq " << expect << " was due");
    ++expect;
  }
  CHECK(expect == n + 1);
}

bool AllArrived(const Subscriber& sub, uint64_t n, int64_t timeout_us) {
  return sub.WaitFor([n](const std::vector<ReceivedMessage>& msgs) {
    const std::string last = "\"seq\":" + std::to_string(n) + ",";
    for (auto it = msgs.rbegin(); it != msgs.rend(); ++it) {
      if (it->payload.find(last) != std::string::npos) return true;
    }
    return false;
  }, timeout_us);
}

TEST_CASE("the proxy's stall forwards part of the next MQTT packet, never all of it",
          "[proxy]") {
  // PUBACK (4 bytes), PINGRESP (2), a PUBLISH with a two-byte length (200).
  const char puback[] = {0x40, 0x02, 0x00, 0x01};
  const char pingresp[] = {static_cast<char>(0xd0), 0x00};
  std::string publish = std::string("\x32\xc5\x01", 3) + std::string(197, 'x');
  CHECK(MqttFramer::HalfOfFirstPacket(puback, sizeof(puback)) == 2);
  CHECK(MqttFramer::HalfOfFirstPacket(pingresp, sizeof(pingresp)) == 1);
  CHECK(MqttFramer::HalfOfFirstPacket(publish.data(), publish.size()) == 100);
  CHECK(MqttFramer::HalfOfFirstPacket(publish.data(), 2) == 1);  // length not all there
  MqttFramer f;
  f.Feed(puback, 3);
  CHECK(!f.AtBoundary());
  f.Feed(puback + 3, 1);
  CHECK(f.AtBoundary());
  f.Feed(publish.data(), 150);
  CHECK(!f.AtBoundary());
  f.Feed(publish.data() + 150, publish.size() - 150);
  f.Feed(pingresp, 2);
  CHECK(f.AtBoundary());
}

TEST_CASE("a silenced proxy forwards nothing and closes nothing; Restore brings it back",
          "[proxy]") {
  // A loopback "broker" that echoes: bytes out come back when forwarded.
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(lfd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  REQUIRE(bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(listen(lfd, 4) == 0);
  REQUIRE(getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  std::thread echo([lfd] {
    for (int i = 0; i < 2; ++i) {
      int fd = accept(lfd, nullptr, nullptr);
      if (fd < 0) return;
      char b[256];
      for (ssize_t n; (n = read(fd, b, sizeof(b))) > 0;) (void)!write(fd, b, static_cast<size_t>(n));
      close(fd);
    }
  });
  TcpProxy proxy(ntohs(addr.sin_port));
  REQUIRE(proxy.Start());
  auto dial = [&] {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in p{};
    p.sin_family = AF_INET;
    p.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p.sin_port = htons(static_cast<uint16_t>(proxy.port()));
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&p), sizeof(p)) == 0);
    timeval tv{0, 300000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
  };
  int fd = dial();
  char b[16];
  REQUIRE(write(fd, "ab", 2) == 2);
  CHECK(read(fd, b, sizeof(b)) == 2);
  proxy.Silence(SilenceMode::kBoth);
  REQUIRE(write(fd, "cd", 2) == 2);
  errno = 0;
  CHECK(read(fd, b, sizeof(b)) == -1);  // nothing, and no end of stream
  CHECK(errno == EAGAIN);
  CHECK(proxy.dropped_bytes() == 2);
  REQUIRE(proxy.Restore());
  CHECK(read(fd, b, sizeof(b)) == 0);  // the silenced connection is shut down
  close(fd);
  fd = dial();  // a new one forwards again
  REQUIRE(write(fd, "ef", 2) == 2);
  CHECK(read(fd, b, sizeof(b)) == 2);
  close(fd);
  proxy.Cut();
  shutdown(lfd, SHUT_RDWR);
  echo.join();
  close(lfd);
}

TEST_CASE("a silent link is dropped within 1.5 x keepalive; every seq arrives after it is back",
          "[uplink][silent]") {
  const MqttClient client = GENERATE(MqttClient::kMosquitto, MqttClient::kPaho);
  const SilenceMode mode = GENERATE(SilenceMode::kBoth, SilenceMode::kClientToBroker,
                                    SilenceMode::kBrokerToClient, SilenceMode::kStallMidPacket);
  INFO(Name(client) << ", " << Name(mode));
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());
  Feed feed;
  Uplink up(Options(proxy, client), "gw-001", 0, feed.ring(), SystemClock::Get());
  REQUIRE(up.Start().ok());
  feed.Start(20);
  REQUIRE(WaitStats(up, [](const UplinkStats& s) { return s.acked_seq >= 20; }, 20000000));

  const int64_t silent_at = MonoNowUs();
  proxy.Silence(mode);
  UplinkStats s;
  REQUIRE(WaitStats(up, [](const UplinkStats& x) { return !x.connected; }, 4 * LimitUs(client),
                    &s));
  const int64_t detected_us = MonoNowUs() - silent_at;
  INFO("detected after " << detected_us / 1000 << " ms: " << s.last_disconnect_reason);
  CHECK(detected_us <= LimitUs(client) + kSlackUs);
  CHECK(detected_us >= KeepaliveS(client) * 1000000ll);  // a live link is never that quiet
  CHECK(s.last_disconnect_reason.find("no reply from broker") != std::string::npos);
  CHECK(s.last_disconnect_reason.find("(keepalive " + std::to_string(KeepaliveS(client)) +
                                      " s)") != std::string::npos);

  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // redials into the silence
  REQUIRE(proxy.Restore());
  REQUIRE(WaitStats(up, [](const UplinkStats& x) { return x.connected && x.reconnects >= 1; },
                    10000000));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const uint64_t n = feed.Stop();
  REQUIRE(n > 20);
  REQUIRE(AllArrived(sub, n, 15000000));
  CheckEverySeqInOrder(sub.Messages(), n);
  CHECK(WaitStats(up, [n](const UplinkStats& x) { return x.acked_seq == n; }, 5000000));
  up.Stop(1000000);
}

TEST_CASE("an idle live link stays up; an idle silent one is dropped in time",
          "[uplink][silent]") {
  // The transport tells when the broker last sent anything, PINGRESPs
  // included (libmosquitto: the socket; Paho: its protocol trace), so the
  // watchdog also covers a link with nothing in flight.
  const MqttClient client = GENERATE(MqttClient::kMosquitto, MqttClient::kPaho);
  INFO(Name(client));
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());
  Feed feed;
  feed.Append(5);
  Uplink up(Options(proxy, client), "gw-001", 0, feed.ring(), SystemClock::Get());
  REQUIRE(up.Start().ok());
  REQUIRE(WaitStats(up, [](const UplinkStats& s) { return s.acked_seq == 5; }, 10000000));
  const MqttClient kMosq = client;
  // Idle past the limit: only PINGREQ/PINGRESP cross the link.
  std::this_thread::sleep_for(std::chrono::microseconds(LimitUs(kMosq) + 1000000));
  UplinkStats s = up.Stats();
  CHECK(s.connected);
  CHECK(s.reconnects == 0);
  CHECK(s.last_disconnect_reason.empty());

  const int64_t silent_at = MonoNowUs();
  proxy.Silence(SilenceMode::kBoth);
  REQUIRE(WaitStats(up, [](const UplinkStats& x) { return !x.connected; }, 4 * LimitUs(kMosq),
                    &s));
  const int64_t detected_us = MonoNowUs() - silent_at;
  INFO("detected after " << detected_us / 1000 << " ms: " << s.last_disconnect_reason);
  CHECK(detected_us <= LimitUs(kMosq) + kSlackUs);
  CHECK(s.last_disconnect_reason.find("no reply from broker") != std::string::npos);
  up.Stop(0);
}

TEST_CASE("Paho's protocol trace: received packets count, sent ones and others do not",
          "[watchdog]") {
  paho_inbound::NoteTraceLine("20261207 062400.123 3 trace-a <- PINGRESP", 1000);
  paho_inbound::NoteTraceLine("20261207 062400.124 3 trace-a -> PINGREQ (0)", 5000);
  paho_inbound::NoteTraceLine("20261207 062400.125 4 trace-b <- PUBACK msgid: 7", 2000);
  paho_inbound::NoteTraceLine("Socket error for client identifier trace-a, socket 3", 9000);
  paho_inbound::NoteTraceLine(" <- ", 9000);
  CHECK(paho_inbound::LastReceivedUs("trace-a", 0) == 1000);
  CHECK(paho_inbound::LastReceivedUs("trace-a", 1001) == -1);  // before this connection
  CHECK(paho_inbound::LastReceivedUs("trace-b", 0) == 2000);
  CHECK(paho_inbound::LastReceivedUs("trace-c", 0) == -1);
}

TEST_CASE("the watchdog's rule: heard, waiting, and what the socket tells", "[watchdog]") {
  LinkWatchdog w(10);
  w.Connected(1000);
  // The socket tells (libmosquitto): silence counts whether or not
  // anything waits; an ack the uplink saw later than the socket is newer.
  CHECK(!w.Expired(w.SilentUs(1000 + 14000000, 14000000, false)));
  CHECK(w.Expired(w.SilentUs(1000 + 15000000, 15000000, false)));
  w.Heard(1000 + 5000000);
  CHECK(w.SilentUs(1000 + 15000000, 15000000, false) == 10000000);
  // Acks only (Paho): nothing waiting never expires.
  CHECK(w.SilentUs(1000 + 60000000, -1, false) == 0);
  w.StartedWaiting(1000 + 20000000);
  CHECK(!w.Expired(w.SilentUs(1000 + 34000000, -1, true)));
  CHECK(w.Expired(w.SilentUs(1000 + 35000000, -1, true)));
  CHECK(w.Reason(15234567) == "no reply from broker for 15.2 s (keepalive 10 s)");
  LinkWatchdog off(0);
  off.Connected(0);
  CHECK(!off.Expired(off.SilentUs(1000000000, 1000000000, true)));
}

}  // namespace
}  // namespace sluice
