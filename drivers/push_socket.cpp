#include "drivers/push_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sluice {
namespace {

constexpr size_t kMaxUnixPath = sizeof(sockaddr_un::sun_path) - 1;

std::string Errno(const std::string& what, int err) {
  return what + ": " + std::strerror(err);
}

bool ParsePort(const std::string& text, int* port) {
  if (text.empty() || text.size() > 5) return false;
  int p = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    p = p * 10 + (c - '0');
  }
  if (p > 65535) return false;
  *port = p;
  return true;
}

// mkdir -p of the directory holding `path`.
Status MakeParents(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == 0 || slash == std::string::npos) return Status::Ok();
  std::string dir = path.substr(0, slash);
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    std::string part = dir.substr(0, i);
    if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      return IoError(Errno("cannot create directory " + part, errno));
    }
  }
  return Status::Ok();
}

sockaddr_un UnixAddr(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  return sa;
}

// Removes a stale socket file at `path`; errors if a live listener or a
// non-socket is there.
Status ClearUnixPath(const std::string& path, int type) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return IoError(Errno("cannot stat " + path, errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return InvalidArgument(path + " exists and is not a socket; not replacing it");
  }
  int probe = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (probe >= 0) {
    sockaddr_un sa = UnixAddr(path);
    bool live = connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
    close(probe);
    if (live) return Unavailable("address in use: another process listens on " + path);
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return IoError(Errno("cannot remove stale socket " + path, errno));
  }
  return Status::Ok();
}

}  // namespace

std::string ListenAddress::ToString() const {
  switch (kind) {
    case Kind::kUnix: return "unix://" + path;
    case Kind::kUnixgram: return "unixgram://" + path;
    case Kind::kTcp:
    case Kind::kUdp: {
      std::string h = ipv6 ? "[" + host + "]" : host;
      return std::string(kind == Kind::kTcp ? "tcp://" : "udp://") + h + ":" +
             std::to_string(port);
    }
  }
  return "?";
}

StatusOr<ListenAddress> ParseListenAddress(const std::string& url) {
  const std::string usage =
      " (expected unix:///PATH, unixgram:///PATH, tcp://127.0.0.1:PORT or "
      "udp://127.0.0.1:PORT; got \"" + url + "\")";
  size_t sep = url.find("://");
  if (sep == std::string::npos) return InvalidArgument("is not a listen address" + usage);
  std::string scheme = url.substr(0, sep);
  std::string rest = url.substr(sep + 3);
  ListenAddress a;
  if (scheme == "unix" || scheme == "unixgram") {
    a.kind = scheme == "unix" ? ListenAddress::Kind::kUnix : ListenAddress::Kind::kUnixgram;
    if (rest.empty() || rest[0] != '/' || rest.size() < 2) {
      return InvalidArgument("needs an absolute socket path" + usage);
    }
    if (rest.size() > kMaxUnixPath) {
      return InvalidArgument("socket path is longer than " + std::to_string(kMaxUnixPath) +
                             " bytes");
    }
    if (rest.back() == '/') return InvalidArgument("socket path names a directory" + usage);
    a.path = rest;
    return a;
  }
  if (scheme != "tcp" && scheme != "udp") {
    return InvalidArgument("has unknown scheme \"" + scheme + "\"" + usage);
  }
  a.kind = scheme == "tcp" ? ListenAddress::Kind::kTcp : ListenAddress::Kind::kUdp;
  std::string host, port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return InvalidArgument("is not a valid address" + usage);
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
    a.ipv6 = true;
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string::npos) return InvalidArgument("needs a port" + usage);
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (!ParsePort(port, &a.port)) return InvalidArgument("has a bad port \"" + port + "\"" + usage);
  if (a.ipv6) {
    in6_addr v6;
    if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) {
      return InvalidArgument("has a bad IPv6 address \"" + host + "\"");
    }
    if (!IN6_IS_ADDR_LOOPBACK(&v6)) {
      return InvalidArgument("address \"" + host +
                             "\" is not loopback (only 127.0.0.0/8 and ::1 are accepted)");
    }
  } else {
    in_addr v4;
    if (inet_pton(AF_INET, host.c_str(), &v4) != 1) {
      return InvalidArgument("address \"" + host +
                             "\" is not a numeric loopback address (only 127.0.0.0/8 and "
                             "[::1] are accepted)");
    }
    if ((ntohl(v4.s_addr) >> 24) != 127) {
      return InvalidArgument("address \"" + host +
                             "\" is not loopback (only 127.0.0.0/8 and ::1 are accepted)");
    }
  }
  a.host = host;
  return a;
}

StatusOr<OpenedListener> OpenListener(const ListenAddress& a) {
  const std::string where = "push listener " + a.ToString();
  const int type = (a.stream() ? SOCK_STREAM : SOCK_DGRAM);
  OpenedListener out;
  if (a.unix_socket()) {
    SLUICE_RETURN_IF_ERROR(MakeParents(a.path));
    Status cleared = ClearUnixPath(a.path, type);
    if (!cleared.ok()) return Status(cleared.code(), where + ": " + cleared.message());
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return IoError(Errno(where + ": socket", errno));
    sockaddr_un sa = UnixAddr(a.path);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      int err = errno;
      close(fd);
      return IoError(Errno(where + ": bind", err));
    }
    out.created_file = true;
    if (chmod(a.path.c_str(), 0660) != 0) {
      int err = errno;
      close(fd);
      unlink(a.path.c_str());
      return IoError(Errno(where + ": chmod 0660", err));
    }
    if (a.stream() && listen(fd, SOMAXCONN) != 0) {
      int err = errno;
      close(fd);
      unlink(a.path.c_str());
      return IoError(Errno(where + ": listen", err));
    }
    out.fd = fd;
    return out;
  }

  int family = a.ipv6 ? AF_INET6 : AF_INET;
  int fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return IoError(Errno(where + ": socket", errno));
  int one = 1;
  if (a.stream()) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len;
  if (a.ipv6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(a.port));
    inet_pton(AF_INET6, a.host.c_str(), &s6->sin6_addr);
    len = sizeof *s6;
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(static_cast<uint16_t>(a.port));
    inet_pton(AF_INET, a.host.c_str(), &s4->sin_addr);
    len = sizeof *s4;
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int err = errno;
    close(fd);
    return IoError(Errno(where + ": bind", err));
  }
  if (a.stream() && listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    close(fd);
    return IoError(Errno(where + ": listen", err));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen) == 0) {
    out.port = a.ipv6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }
  out.fd = fd;
  return out;
}

}  // namespace sluice
