#include "drivers/push.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "drivers/line_protocol.h"
#include "drivers/push_socket.h"

namespace sluice {
namespace {

constexpr int64_t kLogIntervalUs = 10 * 1000000ll;
// A stream submit waits this long per attempt, then re-checks Stop().
constexpr int64_t kStreamSubmitSliceUs = 100 * 1000;
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxDatagram = 64 * 1024;
// A stream client silent this long may be closed to make room for a new one
// when every slot is taken.
constexpr int64_t kMinIdleToEvictUs = 1000000;

// True if data waits on fd (a client we did not read while backpressure held
// us is not idle).
bool HasUnreadData(int fd) {
  char c;
  return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

}  // namespace

struct PushDriver::Client {
  int fd = -1;
  std::string partial;      // an incomplete line, at most kMaxLineBytes
  bool discarding = false;  // inside an overlong line: skip to its newline
  int64_t last_us = 0;      // monotonic: accepted, or last read data
};

PushDriver::PushDriver(std::string name, ListenAddress address, Clock& clock,
                       PushOptions options)
    : name_(std::move(name)),
      address_(std::move(address)),
      options_(options),
      display_(address_.ToString()),
      clock_(clock),
      bad_log_(LogLevel::kWarn, "push", kLogIntervalUs, clock),
      drop_log_(LogLevel::kWarn, "push", kLogIntervalUs, clock) {}

PushDriver::~PushDriver() { Stop(); }

PushStats PushDriver::stats() const {
  PushStats s;
  s.lines_ok = lines_ok_.load();
  s.lines_bad = lines_bad_.load();
  s.dropped = dropped_.load();
  s.clients = clients_.load();
  s.clients_total = clients_total_.load();
  s.backpressure_waits = backpressure_waits_.load();
  s.idle_closed = idle_closed_.load();
  s.kernel_drops = kernel_drops_.load();
  return s;
}

DriverStatus PushDriver::Report() const {
  PushStats s = stats();
  DriverStatus r;
  r.role = DriverStatus::Role::kListener;
  r.fields =
      StatusFields()
          .Text("listen", address_.ToString())
          .Counter("lines_ok", s.lines_ok, "sluice_push_lines_total",
                   "Push lines received, by result.", {"result", "ok"})
          .Counter("lines_bad", s.lines_bad, "sluice_push_lines_total", "",
                   {"result", "rejected"})
          .Counter("dropped", s.dropped, "sluice_push_dropped_total",
                   "Datagram lines the buffer refused.")
          .Gauge("clients", s.clients, "sluice_push_clients", "Stream clients connected now.")
          .Counter("clients_total", s.clients_total)
          .Counter("backpressure_waits", s.backpressure_waits)
          .Counter("idle_closed", s.idle_closed)
          .Counter("kernel_drops", s.kernel_drops, "sluice_push_kernel_drops_total",
                   "Datagrams the kernel dropped: the listener's receive buffer was full.")
          .Take();
  return r;
}

Status PushDriver::Start(ReadingSink& sink) {
  if (thread_.joinable()) return Status::Ok();
  StatusOr<OpenedListener> opened = OpenListener(address_);
  if (!opened.ok()) return opened.status();
  listen_fd_ = opened->fd;
  unlink_on_stop_ = opened->created_file;
  bound_port_ = opened->port;
  {
    ListenAddress shown = address_;
    if (!shown.unix_socket()) shown.port = opened->port;
    display_ = shown.ToString();
  }
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    int err = errno;
    CloseFds();
    return IoError(std::string("push: eventfd: ") + std::strerror(err));
  }
  if (!address_.stream()) {
    // The kernel's count of datagrams it dropped for a full receive buffer
    // comes with each datagram read. Best effort: without it the count stays 0.
    int one = 1;
    (void)setsockopt(listen_fd_, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    if (options_.rcvbuf_bytes > 0) {
      (void)setsockopt(listen_fd_, SOL_SOCKET, SO_RCVBUF, &options_.rcvbuf_bytes,
                       sizeof options_.rcvbuf_bytes);
    }
    last_ovfl_ = 0;
  }
  sink_ = &sink;
  stop_ = false;
  if (address_.stream()) {
    thread_ = std::thread([this] { StreamLoop(); });
  } else {
    thread_ = std::thread([this] { DatagramLoop(); });
  }
  LogInfo("push", "sensor \"" + name_ + "\" listening on " + display_);
  return Status::Ok();
}

void PushDriver::Stop() {
  if (!thread_.joinable()) {
    CloseFds();
    return;
  }
  stop_ = true;
  uint64_t one = 1;
  ssize_t w = write(wake_fd_, &one, sizeof one);
  (void)w;  // the eventfd cannot be full; stop_ is also polled
  thread_.join();
  CloseFds();
}

void PushDriver::CloseFds() {
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
  listen_fd_ = wake_fd_ = -1;
  if (unlink_on_stop_) {
    unlink(address_.path.c_str());
    unlink_on_stop_ = false;
  }
}

void PushDriver::BadLine(const std::string& why) {
  ++lines_bad_;
  bad_log_.Log("bad line on " + display_ + ": " + why);
}

bool PushDriver::HandleLine(std::string_view line, bool stream) {
  if (BlankLine(line)) return true;
  ParsedLine p;
  Status st = ParseLine(line, &p);
  if (!st.ok()) {
    BadLine(st.message());
    return true;
  }
  ++lines_ok_;
  Reading r;
  r.sensor = std::move(p.sensor);
  r.ts_us = p.has_ts ? p.ts_us : clock_.NowWallUs();
  r.value = p.value;
  r.quality = Quality::kGood;
  if (!stream) {
    st = sink_->Submit(std::move(r), 0);
    if (!st.ok()) {
      ++dropped_;
      sink_->CountDropped(1);
      drop_log_.Log("reading dropped on " + display_ +
                    " (datagram listener, pipeline full): " + st.ToString());
    }
    return true;
  }
  // Streams never drop: wait (not reading from anyone) until the sink takes
  // it, re-checking Stop() between attempts.
  bool waited = false;
  for (;;) {
    st = sink_->Submit(r, kStreamSubmitSliceUs);
    if (st.ok()) return true;
    if (!waited) {
      waited = true;
      ++backpressure_waits_;
    }
    if (stop_) return false;
  }
}

bool PushDriver::FeedStream(Client& c, const char* data, size_t n) {
  size_t pos = 0;
  while (pos < n) {
    const char* nl = static_cast<const char*>(std::memchr(data + pos, '\n', n - pos));
    size_t end = nl != nullptr ? static_cast<size_t>(nl - data) : n;
    size_t piece = end - pos;
    if (c.discarding) {
      if (nl != nullptr) c.discarding = false;
    } else if (c.partial.size() + piece > kMaxLineBytes) {
      BadLine("line longer than " + std::to_string(kMaxLineBytes) + " bytes");
      c.partial.clear();
      c.discarding = nl == nullptr;
    } else if (nl == nullptr) {
      c.partial.append(data + pos, piece);
    } else if (c.partial.empty()) {
      if (!HandleLine(std::string_view(data + pos, piece), true)) return false;
    } else {
      c.partial.append(data + pos, piece);
      bool go_on = HandleLine(c.partial, true);
      c.partial.clear();
      if (!go_on) return false;
    }
    pos = end + 1;
  }
  return true;
}

void PushDriver::StreamLoop() {
  std::vector<Client> clients;
  std::vector<pollfd> fds;
  std::vector<char> buf(kReadChunk);
  const int64_t idle_us = options_.idle_timeout_us;
  auto close_client = [&](size_t i, bool flush) {
    Client& c = clients[i];
    // A last line without a newline still counts at end of stream.
    if (flush && !c.discarding && !c.partial.empty()) HandleLine(c.partial, true);
    close(c.fd);
    clients.erase(clients.begin() + static_cast<std::ptrdiff_t>(i));
    --clients_;
  };
  // Closes client i for idleness; an incomplete line it left is bad.
  auto close_idle = [&](size_t i, const char* why) {
    if (!clients[i].partial.empty() || clients[i].discarding) {
      BadLine(std::string("incomplete line dropped: client closed, ") + why);
    }
    ++idle_closed_;
    close_client(i, false);
  };
  // The client silent longest, if silent for at least `min_us`; else npos.
  auto idlest = [&](int64_t now, int64_t min_us) {
    size_t best = clients.size();
    for (size_t i = 0; i < clients.size(); ++i) {
      if (now - clients[i].last_us < min_us) continue;
      if (best == clients.size() || clients[i].last_us < clients[best].last_us) best = i;
    }
    return best;
  };
  while (!stop_) {
    int64_t now = clock_.NowMonotonicUs();
    // Idle timeouts (a client with unread data is busy, not idle).
    for (size_t i = clients.size(); idle_us > 0 && i-- > 0;) {
      if (now - clients[i].last_us < idle_us) continue;
      if (HasUnreadData(clients[i].fd)) {
        clients[i].last_us = now;
      } else {
        close_idle(i, "idle for idle_timeout");
      }
    }
    // Full: accept only when someone can make room; otherwise new clients
    // wait in the backlog until a slot frees or a client turns idle.
    bool full = clients.size() >= options_.max_clients;
    bool can_evict = full && idlest(now, kMinIdleToEvictUs) < clients.size();
    int64_t wake_at = INT64_MAX;
    for (const Client& c : clients) {
      if (idle_us > 0) wake_at = std::min(wake_at, c.last_us + idle_us);
      if (full && !can_evict) wake_at = std::min(wake_at, c.last_us + kMinIdleToEvictUs);
    }
    const int timeout_ms =
        wake_at == INT64_MAX
            ? -1
            : static_cast<int>(std::clamp<int64_t>((wake_at - now) / 1000 + 1, 1, 1000));
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    fds.push_back({listen_fd_, static_cast<short>(!full || can_evict ? POLLIN : 0), 0});
    for (const Client& c : clients) fds.push_back({c.fd, POLLIN, 0});
    int rc = poll(fds.data(), fds.size(), timeout_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      LogError("push", std::string("poll: ") + std::strerror(errno));
      break;
    }
    if (stop_) break;
    // Clients first (indexes in fds match clients until we accept).
    for (size_t i = clients.size(); i-- > 0;) {
      short re = fds[i + 2].revents;
      if (re == 0) continue;
      ssize_t got = read(clients[i].fd, buf.data(), buf.size());
      if (got > 0) {
        clients[i].last_us = clock_.NowMonotonicUs();
        if (!FeedStream(clients[i], buf.data(), static_cast<size_t>(got))) break;
      } else if (got == 0) {
        close_client(i, true);
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        close_client(i, false);
      }
    }
    if (stop_) break;
    if (fds[1].revents & POLLIN) {
      for (;;) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        now = clock_.NowMonotonicUs();
        if (clients.size() >= options_.max_clients) {
          size_t victim = idlest(now, kMinIdleToEvictUs);
          if (victim < clients.size() && HasUnreadData(clients[victim].fd)) {
            clients[victim].last_us = now;  // busy after all
            victim = clients.size();
          }
          if (victim >= clients.size()) {
            close(fd);
            bad_log_.Log("too many clients on " + display_ + " and none idle; refusing one");
            break;
          }
          close_idle(victim, "idle while every client slot was taken");
        }
        clients.push_back(Client{fd, {}, false, now});
        ++clients_;
        ++clients_total_;
      }
    }
  }
  for (Client& c : clients) close(c.fd);
  clients_ -= clients.size();
}

void PushDriver::DatagramLoop() {
  std::vector<char> buf(kMaxDatagram);
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
  while (!stop_) {
    fds[0].revents = fds[1].revents = 0;
    int rc = poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      LogError("push", std::string("poll: ") + std::strerror(errno));
      break;
    }
    if (stop_) break;
    if ((fds[1].revents & POLLIN) == 0) continue;
    // Drain what is queued, bounded so that Stop() is noticed.
    for (int i = 0; i < 1024 && !stop_; ++i) {
      iovec iov{buf.data(), buf.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint32_t))];
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t got = recvmsg(listen_fd_, &msg, MSG_DONTWAIT | MSG_TRUNC);
      if (got < 0) break;
      NoteKernelDrops(msg);
      if (static_cast<size_t>(got) > buf.size()) {
        BadLine("datagram larger than " + std::to_string(buf.size()) + " bytes");
        continue;
      }
      std::string_view dgram(buf.data(), static_cast<size_t>(got));
      for (std::string_view line : SplitDatagram(dgram)) HandleLine(line, false);
    }
  }
}

void PushDriver::NoteKernelDrops(const msghdr& msg) {
  for (const cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
       c = CMSG_NXTHDR(const_cast<msghdr*>(&msg), const_cast<cmsghdr*>(c))) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL) continue;
    uint32_t count;
    std::memcpy(&count, CMSG_DATA(c), sizeof count);
    // The kernel's running count since the socket was made (only sent once
    // non-zero); wraps at 2^32.
    const uint32_t delta = count - last_ovfl_;
    last_ovfl_ = count;
    if (delta == 0) return;
    kernel_drops_ += delta;
    drop_log_.Log(std::to_string(delta) + " datagram(s) dropped by the kernel on " + display_ +
                  " (receive buffer full: the listener fell behind)");
  }
}

StatusOr<std::unique_ptr<Driver>> CreatePushDriver(const SensorSpec& spec, Params& params,
                                                   DriverContext& ctx) {
  StatusOr<std::string> listen = params.RequiredString("listen");
  if (!listen.ok()) return listen.status();
  StatusOr<ListenAddress> address = ParseListenAddress(*listen);
  if (!address.ok()) return params.ErrorAt("listen", address.status().message());
  PushOptions options;
  StatusOr<int64_t> idle = params.Duration("idle_timeout", options.idle_timeout_us);
  if (!idle.ok()) return idle.status();
  if (*idle < 0) return params.ErrorAt("idle_timeout", "must not be negative (0: never)");
  options.idle_timeout_us = *idle;
  return std::unique_ptr<Driver>(new PushDriver(spec.name, *address, ctx.clock, options));
}

}  // namespace sluice
