#include "common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice {
namespace {

std::string Errno(const std::string& what, int err) { return what + ": " + std::strerror(err); }

bool FillUnixAddr(const std::string& path, sockaddr_un* addr) {
  if (path.empty() || path.size() > MaxUnixSocketPath()) return false;
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  std::memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

}  // namespace

size_t MaxUnixSocketPath() { return sizeof(sockaddr_un::sun_path) - 1; }

bool UnixSocketAnswers(const std::string& path, int type) {
  sockaddr_un addr;
  if (!FillUnixAddr(path, &addr)) return false;
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  // EAGAIN: a listener whose backlog is full is alive too.
  return rc == 0 || errno == EAGAIN || errno == EINPROGRESS;
}

StatusOr<BoundUnixSocket> BindUnix(const std::string& path, mode_t mode, int type,
                                   int backlog) {
  sockaddr_un addr;
  if (!FillUnixAddr(path, &addr)) {
    return InvalidArgument("socket path \"" + path + "\" is empty or longer than " +
                           std::to_string(MaxUnixSocketPath()) + " bytes");
  }
  BoundUnixSocket out;
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return InvalidArgument(path + " exists and is not a socket; not replacing it");
    }
    if (UnixSocketAnswers(path, type)) {
      return Unavailable("address in use: another process listens on " + path);
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return IoError(Errno("removing the stale socket " + path, errno));
    }
    out.replaced_stale = true;
  } else if (errno != ENOENT) {
    return IoError(Errno("stat " + path, errno));
  }
  out.fd.reset(::socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!out.fd.valid()) return IoError(Errno("socket for " + path, errno));
  if (::fchmod(out.fd.get(), mode) != 0) return IoError(Errno("fchmod socket " + path, errno));
  if (::bind(out.fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return IoError(Errno("bind " + path, errno));
  }
  Status s;
  if (::chmod(path.c_str(), mode) != 0) s = IoError(Errno("chmod " + path, errno));
  if (s.ok() && type == SOCK_STREAM && ::listen(out.fd.get(), backlog) != 0) {
    s = IoError(Errno("listen " + path, errno));
  }
  if (s.ok() && ::stat(path.c_str(), &st) != 0) s = IoError(Errno("stat " + path, errno));
  if (!s.ok()) {
    ::unlink(path.c_str());
    return s;
  }
  out.dev = st.st_dev;
  out.ino = st.st_ino;
  return out;
}

StatusOr<BoundInetSocket> BindInet(const std::string& host, int port, int type, int backlog) {
  const bool v6 = host.find(':') != std::string::npos;
  const std::string where = (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET6, host.c_str(), &a->sin6_addr) != 1) {
      return InvalidArgument("bad address " + where);
    }
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) {
      return InvalidArgument("bad address " + where);
    }
    len = sizeof *a;
  }
  BoundInetSocket out;
  out.fd.reset(::socket(v6 ? AF_INET6 : AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!out.fd.valid()) return IoError(Errno("socket for " + where, errno));
  if (type == SOCK_STREAM) {
    int one = 1;
    ::setsockopt(out.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (::bind(out.fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    return IoError(Errno("bind " + where, errno));
  }
  if (type == SOCK_STREAM && ::listen(out.fd.get(), backlog) != 0) {
    return IoError(Errno("listen " + where, errno));
  }
  len = sizeof ss;
  if (::getsockname(out.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    out.port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                        : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  return out;
}

}  // namespace sluice
