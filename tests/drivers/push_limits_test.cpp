// Push listener limits with real sockets: idle stream clients time out,
// a full listener makes room by closing its idlest client instead of making
// new senders wait, and datagrams the kernel drops for a full receive
// buffer are counted (SO_RXQ_OVFL).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "drivers/push.h"
#include "test_sink.h"

using namespace sluice;

namespace {

std::unique_ptr<PushDriver> MakePush(const std::string& listen, PushOptions o) {
  StatusOr<ListenAddress> a = ParseListenAddress(listen);
  REQUIRE(a.ok());
  return std::make_unique<PushDriver>("ingest", *a, SystemClock::Get(), o);
}

int ConnectLoopback(int port, int type) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool Send(int fd, const std::string& data) {
  return send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
}

// True once the peer closed fd (EOF or reset), waiting at most timeout_ms.
bool ClosedByPeer(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

template <typename Pred>
bool WaitUntil(Pred pred, int timeout_ms = 10000) {
  for (int i = 0; i < timeout_ms / 5; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

// A sink whose Submit blocks (whatever its timeout) until Open(): pauses a
// datagram listener's reader.
class GateSink : public ReadingSink {
 public:
  Status Submit(Reading, int64_t) override {
    std::unique_lock<std::mutex> lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(20), [this] { return open_; });
    return Status::Ok();
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool WaitEntered(int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return entered_ > 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
};

}  // namespace

TEST_CASE("an idle stream client is closed after idle_timeout; a busy one is not") {
  TestSink sink;
  PushOptions o;
  o.idle_timeout_us = 300000;
  auto d = MakePush("tcp://127.0.0.1:0", o);
  REQUIRE(d->Start(sink).ok());
  int idle = ConnectLoopback(d->port(), SOCK_STREAM);
  int busy = ConnectLoopback(d->port(), SOCK_STREAM);
  REQUIRE(idle >= 0);
  REQUIRE(busy >= 0);
  REQUIRE(Send(idle, "a 1\npartial 2"));  // then silence, an incomplete line
  // The busy one sends every 100 ms for 1 s: never idle for 300 ms.
  for (int i = 0; i < 10; ++i) {
    REQUIRE(Send(busy, "b " + std::to_string(i) + "\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(ClosedByPeer(idle, 2000));
  CHECK_FALSE(ClosedByPeer(busy, 0));
  CHECK(sink.WaitFor(11) == 11);
  PushStats s = d->stats();
  CHECK(s.idle_closed == 1);
  CHECK(s.lines_bad == 1);  // "partial 2" never ended
  CHECK(s.clients == 1);
  close(idle);
  close(busy);
  d->Stop();
}

TEST_CASE("a full stream listener closes its idlest client for a new one") {
  TestSink sink;
  PushOptions o;
  o.idle_timeout_us = 0;  // never: only room-making closes clients here
  o.max_clients = 4;
  auto d = MakePush("tcp://127.0.0.1:0", o);
  REQUIRE(d->Start(sink).ok());
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) {
    idle.push_back(ConnectLoopback(d->port(), SOCK_STREAM));
    REQUIRE(idle.back() >= 0);
  }
  REQUIRE(WaitUntil([&] { return d->stats().clients == 4; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // idle for over 1 s
  // A new sender is served at once, not after the idle ones leave.
  int fresh = ConnectLoopback(d->port(), SOCK_STREAM);
  REQUIRE(fresh >= 0);
  REQUIRE(Send(fresh, "fresh 1\n"));
  CHECK(sink.WaitFor(1, 3000) == 1);
  CHECK(ClosedByPeer(idle[0], 2000));  // the first connected is the idlest
  PushStats s = d->stats();
  CHECK(s.idle_closed == 1);
  CHECK(s.clients == 4);
  for (int fd : idle) close(fd);
  close(fresh);
  d->Stop();
}

TEST_CASE("datagrams the kernel drops for a full receive buffer are counted", "[kernel]") {
  GateSink sink;
  PushOptions o;
  o.rcvbuf_bytes = 4096;  // a few datagrams
  auto d = MakePush("udp://127.0.0.1:0", o);
  REQUIRE(d->Start(sink).ok());
  int fd = ConnectLoopback(d->port(), SOCK_DGRAM);
  REQUIRE(fd >= 0);
  REQUIRE(Send(fd, "x 0\n"));
  REQUIRE(sink.WaitEntered(5000));  // the reader is stuck in Submit
  constexpr int kFlood = 300;
  for (int i = 1; i <= kFlood; ++i) REQUIRE(Send(fd, "x " + std::to_string(i) + "\n"));
  sink.Open();
  // The reader drains what the kernel kept (settled: no change for 300 ms)...
  uint64_t read = 0;
  for (int quiet = 0, i = 0; quiet < 60 && i < 2000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const uint64_t now = d->stats().lines_ok;
    quiet = now == read ? quiet + 1 : 0;
    read = now;
  }
  // ... then a last datagram, queued into the empty buffer, carries the
  // kernel's final drop count.
  REQUIRE(Send(fd, "x 999\n"));
  REQUIRE(WaitUntil([&] { return d->stats().lines_ok == read + 1; }, 5000));
  const PushStats s = d->stats();
  const uint64_t sent = kFlood + 2;
  INFO("sent " << sent << ", read " << s.lines_ok << ", kernel drops " << s.kernel_drops);
  CHECK(s.kernel_drops > 0);
  CHECK(s.kernel_drops == sent - s.lines_ok);
  close(fd);
  d->Stop();
}
