#include "agent/control/control_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <mutex>

#include "agent/control/control_server_impl.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/net.h"

namespace sluice {

using control_internal::Errno;
using control_internal::kMaxHttpHeader;

namespace {

constexpr size_t kReadChunk = 16 << 10;

// Idle and request deadlines of real poll() waits: only real time drives
// them, so the process clock rather than an injected one.
int64_t NowUs() { return SystemClock::Get().NowMonotonicUs(); }

std::string ErrorLine(const std::string& message) {
  return "{\"ok\":false,\"error\":" + JsonString(message) + "}";
}

}  // namespace


Status ControlServer::Impl::BindUnix() {
  const std::string& path = opt.socket_path;
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
      return IoError(Errno("creating " + dir + " for the control socket"));
    }
  }
  StatusOr<BoundUnixSocket> bound = sluice::BindUnix(path, 0660, SOCK_STREAM, 64);
  if (!bound.ok()) {
    if (bound.status().code() == StatusCode::kUnavailable) {
      return Unavailable("another sluiced is already serving the control socket " + path +
                         " (is it running? stop it first)");
    }
    return Status(bound.status().code(), "control socket " + bound.status().message());
  }
  if (bound->replaced_stale) {
    LogInfo("control", "replaced a stale control socket " + path + " (left by a crash)");
  }
  unix_fd = bound->fd.release();
  sock_dev = bound->dev;
  sock_ino = bound->ino;
  return Status::Ok();
}

void ControlServer::Impl::CloseAll() {
  for (Conn& c : conns) ::close(c.fd);
  conns.clear();
  for (int* fd : {&unix_fd, &http_fd, &wake[0], &wake[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void ControlServer::Impl::Accept(int listen_fd, bool http) {
  for (;;) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        accept_paused_until_us = NowUs() + 100000;
        Count(&ControlServerStats::rejected);
      }
      return;  // EAGAIN, or a transient error: poll again
    }
    size_t same =
        std::count_if(conns.begin(), conns.end(), [&](const Conn& c) { return c.http == http; });
    if (same >= opt.max_clients && EvictOldestIdle(http)) --same;
    if (same >= opt.max_clients) {
      Count(&ControlServerStats::rejected);
      std::string msg = http ? "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
                             : ErrorLine("too many clients") + "\n";
      ssize_t n = ::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)n;
      ::close(fd);
      continue;
    }
    Conn c;
    c.fd = fd;
    c.http = http;
    c.last_us = NowUs();
    if (http) c.request_us = c.last_us;
    conns.push_back(std::move(c));
    Count(&ControlServerStats::clients);
    // A client sends its request right after connecting: serve what is
    // already here now, so that it is busy (not idle, not evictable) before
    // the next client in the backlog needs a slot.
    Conn& fresh = conns.back();
    ReadFrom(fresh);
    Process(fresh);
    if (fresh.pending()) WriteTo(fresh);
    if (!fresh.pending()) Process(fresh);  // the next request already read
  }
}

bool ControlServer::Impl::EvictOldestIdle(bool http) {
  const int64_t now = NowUs();
  // Idle: no response on its way and no request begun. A client that
  // trickles a request is not idle; its request deadline bounds it.
  auto idle = [&](const Conn& c) {
    return c.http == http && !c.pending() && !c.close_after && c.in.empty() &&
           c.request_us == 0;
  };
  for (size_t tries = 0; tries <= conns.size(); ++tries) {
    auto oldest = conns.end();
    for (auto it = conns.begin(); it != conns.end(); ++it) {
      if (idle(*it) && (oldest == conns.end() || it->last_us < oldest->last_us)) oldest = it;
    }
    if (oldest == conns.end()) return false;
    // What it sent since the last poll makes it busy, not idle: look first.
    ReadFrom(*oldest);
    Process(*oldest);
    if (oldest->pending()) WriteTo(*oldest);
    if (!idle(*oldest)) continue;
    if (!http && !oldest->eof) {
      const std::string msg =
          ErrorLine("closed: idle for " + std::to_string((now - oldest->last_us) / 1000) +
                    " ms while every one of the " + std::to_string(opt.max_clients) +
                    " client slots was taken") + "\n";
      ssize_t n = ::send(oldest->fd, msg.data(), msg.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)n;
    }
    if (!oldest->eof) Count(&ControlServerStats::evicted);  // else it had left anyway
    ::close(oldest->fd);
    conns.erase(oldest);
    return true;
  }
  return false;
}

void ControlServer::Impl::ReadFrom(Conn& c) {
  // Never buffer more than one oversized request's worth.
  const size_t cap = (c.http ? kMaxHttpHeader : opt.max_request_bytes) + 1;
  char buf[kReadChunk];
  while (!c.eof && c.in.size() < cap) {
    size_t want = std::min(sizeof buf, cap - c.in.size());
    ssize_t n = ::recv(c.fd, buf, want, MSG_DONTWAIT);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      c.last_us = NowUs();
      if (c.request_us == 0) c.request_us = c.last_us;
      continue;
    }
    if (n == 0) {
      c.eof = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      c.eof = true;
      c.close_after = true;
      c.in.clear();
    }
    break;
  }
}

void ControlServer::Impl::WriteTo(Conn& c) {
  while (c.pending()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_pos += static_cast<size_t>(n);
      c.last_us = NowUs();
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    c.eof = true;  // peer gone
    c.close_after = true;
    c.out.clear();
    c.out_pos = 0;
    return;
  }
  c.out.clear();
  c.out_pos = 0;
}

std::string ControlServer::Impl::Answer(const std::string& line) {
  JsonLimits limits;
  limits.max_bytes = opt.max_request_bytes;
  limits.max_depth = 16;
  limits.max_elements = 4096;
  auto req = ParseJson(line, limits);
  if (!req.ok()) {
    Count(&ControlServerStats::bad_requests);
    return ErrorLine("bad request: " + req.status().message());
  }
  const JsonValue* cmd = req->Find("cmd");
  if (!req->is_object() || cmd == nullptr || !cmd->is_string()) {
    Count(&ControlServerStats::bad_requests);
    return ErrorLine(
        "bad request: expected an object with a string \"cmd\", e.g. {\"cmd\":\"status\"}");
  }
  StatusOr<std::string> r = handler(cmd->AsString(), *req);
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kInvalidArgument) Count(&ControlServerStats::bad_requests);
    return ErrorLine(r.status().message());
  }
  if (r->size() > opt.max_response_bytes) {
    return ErrorLine("response too large (" + std::to_string(r->size()) + " bytes)");
  }
  Count(&ControlServerStats::requests);
  return std::move(*r);
}

void ControlServer::Impl::ProcessControl(Conn& c) {
  while (!c.pending() && !c.close_after) {
    size_t nl = c.in.find('\n');
    if (nl == std::string::npos) {
      if (c.in.size() > opt.max_request_bytes) {
        Count(&ControlServerStats::oversized);
        c.out =
            ErrorLine("request longer than " + std::to_string(opt.max_request_bytes) + " bytes") +
            "\n";
        c.in.clear();
        c.close_after = true;
        return;
      }
      if (!c.eof || c.in.empty()) return;
      nl = c.in.size();  // a last request without a newline
    }
    std::string line = c.in.substr(0, nl);
    c.in.erase(0, std::min(c.in.size(), nl + 1));
    c.request_us = c.in.empty() ? 0 : NowUs();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    c.out = Answer(line) + "\n";
    c.out_pos = 0;
  }
}

void ControlServer::Impl::Process(Conn& c) {
  if (c.http)
    ProcessHttp(c);
  else
    ProcessControl(c);
}

void ControlServer::Impl::Run() {
  std::vector<pollfd> fds;
  std::vector<Conn*> order;
  while (!stop.load()) {
    fds.clear();
    order.clear();
    fds.push_back({wake[0], POLLIN, 0});
    int64_t now = NowUs();
    int64_t next_deadline = now + 1000000;
    // poll() ignores negative fds: no accepting while out of descriptors.
    const bool accepting = now >= accept_paused_until_us;
    if (!accepting) next_deadline = std::min(next_deadline, accept_paused_until_us);
    fds.push_back({accepting ? unix_fd : -1, POLLIN, 0});
    if (http_fd >= 0) fds.push_back({accepting ? http_fd : -1, POLLIN, 0});
    const size_t first_conn = fds.size();
    for (Conn& c : conns) {
      // One request at a time: read again only once the response is out.
      short ev = c.pending() ? POLLOUT : (c.eof ? 0 : POLLIN);
      fds.push_back({c.fd, ev, 0});
      order.push_back(&c);
      next_deadline = std::min(next_deadline, c.last_us + opt.idle_timeout_us);
      if (c.request_us != 0 && !c.pending()) {
        next_deadline = std::min(next_deadline, c.request_us + opt.idle_timeout_us);
      }
    }
    int timeout_ms =
        static_cast<int>(std::clamp<int64_t>((next_deadline - now) / 1000 + 1, 1, 1000));
    int n = ::poll(fds.data(), fds.size(), timeout_ms);
    if (n < 0 && errno != EINTR) {
      LogError("control", Errno("poll"));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (stop.load()) break;
    if (n > 0) {
      if (fds[0].revents) {
        char buf[16];
        while (::read(wake[0], buf, sizeof buf) > 0) {
        }
      }
      for (size_t i = first_conn; i < fds.size(); ++i) {
        Conn& c = *order[i - first_conn];
        short re = fds[i].revents;
        if (re & POLLOUT) WriteTo(c);
        if (re & (POLLIN | POLLHUP | POLLERR)) {
          if (!c.pending())
            ReadFrom(c);
          else if (re & (POLLHUP | POLLERR))
            c.eof = c.close_after = true;
        }
        Process(c);
        if (c.pending()) WriteTo(c);   // most responses fit the socket buffer at once
        if (!c.pending()) Process(c);  // the next request already read
      }
      // After serving what the connections sent (so a request already
      // waiting is answered before its connection could be evicted; `order`
      // is not used after this).
      if (fds[1].revents & POLLIN) Accept(unix_fd, false);
      if (http_fd >= 0 && (fds[2].revents & POLLIN)) Accept(http_fd, true);
    }
    now = NowUs();
    for (auto it = conns.begin(); it != conns.end();) {
      bool idle = now - it->last_us > opt.idle_timeout_us ||
                  (it->request_us != 0 && !it->pending() &&
                   now - it->request_us > opt.idle_timeout_us);
      bool done = !it->pending() && (it->close_after || (it->eof && it->in.empty()));
      if (idle && !done) Count(&ControlServerStats::timeouts);
      if (idle || done) {
        ::close(it->fd);
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  }
}

ControlServer::ControlServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ControlServer::~ControlServer() { Stop(); }

StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(const ControlServerOptions& options,
                                                              Handler handler,
                                                              MetricsText metrics) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->handler = std::move(handler);
  impl->metrics = std::move(metrics);
  if (::pipe2(impl->wake, O_CLOEXEC | O_NONBLOCK) != 0) return IoError(Errno("pipe"));
  SLUICE_RETURN_IF_ERROR(impl->BindUnix());
  int port = 0;
  if (!options.metrics_host.empty()) {
    Status s = impl->BindHttp(&port);
    if (!s.ok()) {
      ::unlink(options.socket_path.c_str());
      return s;
    }
  }
  std::unique_ptr<ControlServer> server(new ControlServer(std::move(impl)));
  server->metrics_port_ = port;
  Impl* p = server->impl_.get();
  p->thread = std::thread([p] { p->Run(); });
  return server;
}

void ControlServer::Stop() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  s.stop.store(true);
  char c = 1;
  ssize_t n = ::write(s.wake[1], &c, 1);
  (void)n;
  if (s.thread.joinable()) s.thread.join();
  struct stat st;
  if (::lstat(s.opt.socket_path.c_str(), &st) == 0 && st.st_dev == s.sock_dev &&
      st.st_ino == s.sock_ino) {
    ::unlink(s.opt.socket_path.c_str());
  }
  s.CloseAll();
}

ControlServerStats ControlServer::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->stats;
}

}  // namespace sluice
