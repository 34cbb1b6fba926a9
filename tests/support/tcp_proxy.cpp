#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace sluice {
namespace testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  return addr;
}

}  // namespace

void MqttFramer::Feed(const char* data, size_t n) {
  size_t i = 0;
  while (i < n) {
    const auto b = static_cast<uint8_t>(data[i]);
    switch (state_) {
      case State::kHeader:
        state_ = State::kLength;
        length_ = 0;
        multiplier_ = 1;
        ++i;
        break;
      case State::kLength:
        length_ += (b & 127u) * multiplier_;
        multiplier_ *= 128;
        if ((b & 128u) == 0) state_ = length_ == 0 ? State::kHeader : State::kBody;
        ++i;
        break;
      case State::kBody: {
        const size_t take = std::min<size_t>(length_, n - i);
        length_ -= static_cast<uint32_t>(take);
        i += take;
        if (length_ == 0) state_ = State::kHeader;
        break;
      }
    }
  }
}

size_t MqttFramer::HalfOfFirstPacket(const char* data, size_t n) {
  if (n == 0) return 0;
  // Fixed header: one type byte, then the remaining length in 1..4 bytes.
  uint64_t remaining = 0;
  uint64_t multiplier = 1;
  for (size_t i = 1; i < n && i <= 4; ++i) {
    const auto b = static_cast<uint8_t>(data[i]);
    remaining += (b & 127u) * multiplier;
    multiplier *= 128;
    if ((b & 128u) == 0) {
      const uint64_t total = 1 + i + remaining;  // >= 2
      return static_cast<size_t>(std::min<uint64_t>(std::max<uint64_t>(1, total / 2), n));
    }
  }
  return 1;  // the length is not all here: its first byte is part of the packet
}

TcpProxy::TcpProxy(int target_port) : target_port_(target_port) {}

TcpProxy::~TcpProxy() { CloseAll(); }

bool TcpProxy::Start() { return Listen(); }

bool TcpProxy::Listen() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = Loopback(port_);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 16) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return false;
  }
  port_ = ntohs(addr.sin_port);
  std::lock_guard<std::mutex> lock(mu_);
  listen_fd_ = fd;
  cut_ = false;
  accept_thread_ = std::thread(&TcpProxy::AcceptLoop, this, fd);
  return true;
}

void TcpProxy::AcceptLoop(int listen_fd) {
  for (;;) {
    int cfd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down by Cut()
    }
    int sfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = Loopback(target_port_);
    if (sfd < 0 || connect(sfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      if (sfd >= 0) close(sfd);
      close(cfd);
      continue;
    }
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> lock(mu_);
    if (cut_) {
      close(cfd);
      close(sfd);
      return;
    }
    auto conn = std::make_unique<Conn>();
    conn->client_fd = cfd;
    conn->server_fd = sfd;
    conn->up.from = cfd;
    conn->up.to = sfd;
    conn->up.is_up = true;
    conn->down.from = sfd;
    conn->down.to = cfd;
    ApplyLocked(conn.get(), mode_);
    Conn* c = conn.get();
    conn->up.pump = std::thread([this, c] { Pump(&c->up); });
    conn->down.pump = std::thread([this, c] { Pump(&c->down); });
    if (const int64_t after = drop_after_us_.load(); after > 0) {
      // Shutting down (not closing) ends both pumps; CloseAll closes the fds
      // after joining this thread, so they cannot have been reused.
      conn->dropper = std::thread([cfd, sfd, after] {
        std::this_thread::sleep_for(std::chrono::microseconds(after));
        shutdown(cfd, SHUT_RDWR);
        shutdown(sfd, SHUT_RDWR);
      });
    }
    conns_.push_back(std::move(conn));
    accepted_++;
  }
}

// Copies d->from -> d->to until EOF or error, then shuts both sockets down
// so the opposite pump ends too; a silenced connection throws away what it
// does not forward and passes no end of stream on. File descriptors are
// closed only by CloseAll, so they cannot be reused while a pump still uses
// them.
void TcpProxy::Pump(Direction* d) {
  char buf[16384];
  for (;;) {
    ssize_t n = read(d->from, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    const SilenceMode mode = d->mode.load();
    if (n <= 0) {
      if (mode != SilenceMode::kNone) return;  // Restore() or Cut() shuts it down
      break;
    }
    size_t forward = static_cast<size_t>(n);
    switch (mode) {
      case SilenceMode::kNone:
        break;
      case SilenceMode::kBoth:
        forward = 0;
        break;
      case SilenceMode::kClientToBroker:
        if (d->is_up) forward = 0;
        break;
      case SilenceMode::kBrokerToClient:
        if (!d->is_up) forward = 0;
        break;
      case SilenceMode::kStallMidPacket:
        // Mid-packet already (the last chunk ended inside one): stop here.
        forward = d->stalled || !d->framer.AtBoundary()
                      ? 0
                      : MqttFramer::HalfOfFirstPacket(buf, forward);
        d->stalled = true;
        break;
    }
    if (forward < static_cast<size_t>(n)) dropped_bytes_ += static_cast<size_t>(n) - forward;
    d->framer.Feed(buf, forward);
    size_t off = 0;
    bool failed = false;
    while (off < forward) {
      ssize_t w = send(d->to, buf + off, forward - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        failed = true;
        break;
      }
      off += static_cast<size_t>(w);
    }
    if (failed) {
      if (d->mode.load() != SilenceMode::kNone) return;
      break;
    }
  }
  shutdown(d->from, SHUT_RDWR);
  shutdown(d->to, SHUT_RDWR);
}

void TcpProxy::ApplyLocked(Conn* c, SilenceMode mode) {
  c->up.mode = mode;
  c->down.mode = mode;
}

void TcpProxy::Silence(SilenceMode mode) {
  std::lock_guard<std::mutex> lock(mu_);
  mode_ = mode;
  for (auto& c : conns_) ApplyLocked(c.get(), mode);
}

void TcpProxy::CloseAll() {
  std::thread accept_thread;
  std::vector<std::unique_ptr<Conn>> conns;
  int listen_fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cut_ = true;
    listen_fd = listen_fd_;
    listen_fd_ = -1;
    if (listen_fd >= 0) shutdown(listen_fd, SHUT_RDWR);  // wakes accept()
    for (auto& c : conns_) {
      shutdown(c->client_fd, SHUT_RDWR);
      shutdown(c->server_fd, SHUT_RDWR);
    }
    conns.swap(conns_);
    accept_thread.swap(accept_thread_);
  }
  if (accept_thread.joinable()) accept_thread.join();
  if (listen_fd >= 0) close(listen_fd);
  for (auto& c : conns) {
    if (c->up.pump.joinable()) c->up.pump.join();
    if (c->down.pump.joinable()) c->down.pump.join();
    if (c->dropper.joinable()) c->dropper.join();
    close(c->client_fd);
    close(c->server_fd);
  }
}

void TcpProxy::Cut() { CloseAll(); }

bool TcpProxy::Restore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    mode_ = SilenceMode::kNone;
    for (auto& c : conns_) {
      if (c->up.mode.load() == SilenceMode::kNone) continue;
      shutdown(c->client_fd, SHUT_RDWR);
      shutdown(c->server_fd, SHUT_RDWR);
    }
    if (listen_fd_ >= 0) return true;
  }
  return Listen();
}

}  // namespace testing
}  // namespace sluice
