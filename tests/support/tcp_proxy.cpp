#include "tests/support/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

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
    conn->up = std::thread(&TcpProxy::Pump, cfd, sfd);
    conn->down = std::thread(&TcpProxy::Pump, sfd, cfd);
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

// Copies from -> to until EOF or error, then shuts both sockets down so the
// opposite pump ends too. File descriptors are closed only by CloseAll, so
// they cannot be reused while a pump still uses them.
void TcpProxy::Pump(int from, int to) {
  char buf[16384];
  for (;;) {
    ssize_t n = read(from, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    ssize_t off = 0;
    while (off < n) {
      ssize_t w = send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        off = -1;
        break;
      }
      off += w;
    }
    if (off < 0) break;
  }
  shutdown(from, SHUT_RDWR);
  shutdown(to, SHUT_RDWR);
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
    if (c->up.joinable()) c->up.join();
    if (c->down.joinable()) c->down.join();
    if (c->dropper.joinable()) c->dropper.join();
    close(c->client_fd);
    close(c->server_fd);
  }
}

void TcpProxy::Cut() { CloseAll(); }

bool TcpProxy::Restore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (listen_fd_ >= 0) return true;
  }
  return Listen();
}

}  // namespace testing
}  // namespace sluice
