#include "agent/control/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/clock.h"

namespace sluice {
namespace {

constexpr size_t kMaxResponse = 64 << 20;

// Deadlines of real poll() waits: only real time drives them, so the
// process clock rather than an injected one.
int64_t NowUs() { return SystemClock::Get().NowMonotonicUs(); }

// Waits for `events` on fd until deadline; false on timeout.
bool WaitFd(int fd, short events, int64_t deadline_us) {
  for (;;) {
    int64_t left = deadline_us - NowUs();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(left / 1000 + 1));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

}  // namespace

StatusOr<JsonValue> ControlCall(const std::string& path, const std::string& request,
                                int64_t timeout_us, std::string* raw) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return InvalidArgument("control socket path \"" + path + "\" is empty or too long");
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return IoError(std::string("socket: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // Bounds a blocking connect() (a daemon whose backlog is full) and send().
  timeval tv{static_cast<time_t>(timeout_us / 1000000),
             static_cast<suseconds_t>(timeout_us % 1000000)};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    if (e == ENOENT)
      return Unavailable("sluiced is not running (no control socket at " + path + ")");
    if (e == ECONNREFUSED) {
      return Unavailable("sluiced is not running (nothing listens on " + path +
                         "; a socket left by a crash?)");
    }
    if (e == EACCES || e == EPERM) {
      return Unavailable("permission denied on " + path +
                         " (run as root or as a member of the daemon's group)");
    }
    if (e == EAGAIN || e == EINPROGRESS) {
      return Unavailable("sluiced at " + path + " does not accept connections (busy or hung)");
    }
    return Unavailable("cannot reach sluiced at " + path + ": " + std::strerror(e));
  }
  return ControlExchange(fd, path, request, timeout_us, raw);
}

StatusOr<JsonValue> ControlExchange(int fd, const std::string& path, const std::string& request,
                                    int64_t timeout_us, std::string* raw) {
  const int64_t deadline = NowUs() + timeout_us;
  std::string out = request + "\n";
  size_t off = 0;
  bool sent_all = true;
  while (off < out.size()) {
    ssize_t n = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && WaitFd(fd, POLLOUT, deadline)) continue;
    const int err = n < 0 ? errno : 0;
    if (err == EPIPE || err == ECONNRESET) {
      // The daemon closed the connection before it took the request; it
      // says why in a line it wrote first ("too many clients"): read it.
      sent_all = false;
      break;
    }
    return Unavailable("sending to sluiced at " + path +
                       " failed: " + (err != 0 ? std::strerror(err) : "timed out"));
  }
  std::string in;
  char buf[65536];
  for (;;) {
    if (!sent_all) {
      // Only what is already here: the daemon has closed its side.
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        in.append(buf, static_cast<size_t>(n));
        if (in.size() > kMaxResponse) return Unavailable("response from sluiced too large");
        if (in.find('\n') == std::string::npos) continue;
      }
      if (in.find('\n') == std::string::npos) {
        return Unavailable("sluiced at " + path +
                           " closed the connection before taking the request (too many "
                           "clients, or it is stopping); try again");
      }
    }
    size_t nl = in.find('\n');
    if (nl != std::string::npos) {
      in.resize(nl);
      break;
    }
    if (!WaitFd(fd, POLLIN, deadline)) {
      return Unavailable("sluiced at " + path + " did not answer within " +
                         std::to_string(timeout_us / 1000000) + " s");
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      in.append(buf, static_cast<size_t>(n));
      if (in.size() > kMaxResponse) return Unavailable("response from sluiced too large");
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    return Unavailable("sluiced at " + path + " closed the connection without an answer");
  }
  JsonLimits limits;
  limits.max_bytes = kMaxResponse;
  limits.max_elements = 1 << 22;
  auto v = ParseJson(in, limits);
  if (raw) *raw = in;
  if (!v.ok()) return Internal("unreadable response from sluiced: " + v.status().message());
  const JsonValue* ok = v->Find("ok");
  if (ok == nullptr || !ok->AsBool()) {
    const JsonValue* err = v->Find("error");
    return Unavailable("sluiced: " + (err ? err->AsString() : std::string("request failed")));
  }
  return std::move(*v);
}

}  // namespace sluice
