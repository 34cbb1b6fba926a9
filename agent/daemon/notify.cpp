#include "agent/daemon/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "common/log.h"

namespace sluice {

Notifier::Notifier() {
  const char* sock = std::getenv("NOTIFY_SOCKET");
  if (sock == nullptr || sock[0] == '\0') return;
  path_ = sock;
  if (path_.size() >= sizeof(sockaddr_un{}.sun_path) || (path_[0] != '/' && path_[0] != '@')) {
    LogWarn("agent", "NOTIFY_SOCKET \"" + path_ + "\" is not usable; not notifying systemd");
    return;
  }
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    LogWarn("agent", std::string("cannot create the notify socket: ") + std::strerror(errno));
    return;
  }
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  bool ours = pid == nullptr || std::strtoll(pid, nullptr, 10) == static_cast<long long>(getpid());
  if (usec != nullptr && ours) {
    long long v = std::strtoll(usec, nullptr, 10);
    if (v > 0) watchdog_interval_us_ = v / 2;
  }
}

Notifier::~Notifier() {
  if (fd_ >= 0) ::close(fd_);
}

bool Notifier::Send(const std::string& state) {
  if (fd_ < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size());
  ssize_t n = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                       reinterpret_cast<const sockaddr*>(&addr), len);
  return n == static_cast<ssize_t>(state.size());
}

}  // namespace sluice
