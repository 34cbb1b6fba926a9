// The HTTP /metrics listener of ControlServer (control_server.h): binding
// the TCP address and answering one request per connection.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "agent/control/control_server_impl.h"
#include "common/net.h"

namespace sluice {

using control_internal::Errno;
using control_internal::kMaxHttpHeader;

Status ControlServer::Impl::BindHttp(int* port) {
  StatusOr<BoundInetSocket> bound =
      BindInet(opt.metrics_host, opt.metrics_port, SOCK_STREAM, 64);
  if (!bound.ok()) {
    return Status(bound.status().code(), "metrics_listen: " + bound.status().message());
  }
  http_fd = bound->fd.release();
  *port = bound->port;
  return Status::Ok();
}

void ControlServer::Impl::ProcessHttp(Conn& c) {
  if (c.pending() || c.close_after) return;
  size_t end = c.in.find("\r\n\r\n");
  if (end == std::string::npos) end = c.in.find("\n\n");
  auto respond = [&](const char* status, const std::string& extra, const std::string& body,
                     bool head) {
    c.out = std::string("HTTP/1.0 ") + status + "\r\n" + extra +
            "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    if (!head) c.out += body;
    c.out_pos = 0;
    c.close_after = true;
    c.in.clear();
  };
  if (end == std::string::npos) {
    if (c.in.size() > kMaxHttpHeader) {
      Count(&ControlServerStats::oversized);
      respond("431 Request Header Fields Too Large", "", "request headers too large\n", false);
    } else if (c.eof) {
      c.close_after = true;
    }
    return;
  }
  Count(&ControlServerStats::http_requests);
  std::string first = c.in.substr(0, c.in.find_first_of("\r\n"));
  size_t sp1 = first.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : first.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || first.compare(sp2 + 1, 5, "HTTP/") != 0) {
    respond("400 Bad Request", "Content-Type: text/plain\r\n", "bad request\n", false);
    return;
  }
  std::string method = first.substr(0, sp1);
  std::string target = first.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string path = target.substr(0, target.find('?'));
  if (path != "/metrics") {
    respond("404 Not Found", "Content-Type: text/plain\r\n", "not found; try /metrics\n",
            method == "HEAD");
    return;
  }
  if (method != "GET" && method != "HEAD") {
    respond("405 Method Not Allowed", "Allow: GET, HEAD\r\nContent-Type: text/plain\r\n",
            "method not allowed\n", false);
    return;
  }
  respond("200 OK", "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n", metrics(),
          method == "HEAD");
}

}  // namespace sluice
