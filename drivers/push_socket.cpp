#include "drivers/push_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "common/net.h"

namespace sluice {
namespace {

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
    if (rest.size() > MaxUnixSocketPath()) {
      return InvalidArgument("socket path is longer than " + std::to_string(MaxUnixSocketPath()) +
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
    StatusOr<BoundUnixSocket> bound = BindUnix(a.path, 0660, type, SOMAXCONN);
    if (!bound.ok()) return Status(bound.status().code(), where + ": " + bound.status().message());
    out.created_file = true;
    out.fd = bound->fd.release();
    return out;
  }
  StatusOr<BoundInetSocket> bound = BindInet(a.host, a.port, type, SOMAXCONN);
  if (!bound.ok()) return Status(bound.status().code(), where + ": " + bound.status().message());
  out.port = bound->port;
  out.fd = bound->fd.release();
  return out;
}

}  // namespace sluice
