// `driver = "push"`: local programs send readings over a socket in the line
// protocol of CONTRACT.md (drivers/line_protocol.h). The sensor's own name
// only names the listener; each line names its own sensor.
//
// Params:
//   listen  (required)  unix:///PATH      stream socket
//                       unixgram:///PATH  datagram socket
//                       tcp://ADDR:PORT   ADDR in 127.0.0.0/8 or [::1]
//                       udp://ADDR:PORT   likewise; PORT 0 picks a free port
//   idle_timeout = "5m" stream listeners: a client that sends nothing for
//                       this long is closed (0: never)
//
// Stream listeners (unix, tcp) serve every client from one poll() thread,
// buffer partial lines per client (bounded by kMaxLineBytes) and apply
// backpressure: while the sink is full they wait and stop reading, so the
// kernel buffers fill and senders block; no stream reading is dropped.
// At most max_clients (1024) clients at once: when all are taken, a new
// client closes the one that has sent nothing for longest (at least 1 s),
// and while none has, new clients wait in the listen backlog. A client idle
// for idle_timeout is closed (an incomplete last line is counted bad); a
// client with unread data is never idle (backpressure is not idleness).
// Datagram listeners (unixgram, udp) cannot push back: a reading the sink
// refuses is counted in `dropped`, and datagrams the kernel dropped because
// the socket's receive buffer was full (SO_RXQ_OVFL) in `kernel_drops`. Bad lines are counted and logged
// (rate-limited, component "push") and never stop the listener. Readings
// carry the line's sensor, its timestamp (or the wall clock now), no unit,
// quality good.
//
// Unix sockets: a stale socket file at PATH is replaced (a live listener or a
// non-socket file there is an error), missing parent directories are
// created, the socket is chmod 0660 and removed again by Stop().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "drivers/driver.h"

struct msghdr;

namespace sluice {

struct ListenAddress {
  enum class Kind { kUnix, kUnixgram, kTcp, kUdp };
  Kind kind = Kind::kUnix;
  std::string path;   // kUnix, kUnixgram
  std::string host;   // kTcp, kUdp: numeric loopback address, no brackets
  bool ipv6 = false;
  int port = 0;

  bool stream() const { return kind == Kind::kUnix || kind == Kind::kTcp; }
  bool unix_socket() const { return kind == Kind::kUnix || kind == Kind::kUnixgram; }
  std::string ToString() const;
};

// Parses a `listen` value. The error message says what is wrong, without a
// location (the factory adds FILE:LINE:COL).
StatusOr<ListenAddress> ParseListenAddress(const std::string& url);

struct PushStats {
  uint64_t lines_ok = 0;       // well-formed lines (including dropped ones)
  uint64_t lines_bad = 0;      // malformed or overlong lines
  uint64_t dropped = 0;        // well-formed datagram lines the sink refused
  uint64_t clients = 0;        // stream clients connected now
  uint64_t clients_total = 0;  // stream clients accepted since Start()
  uint64_t backpressure_waits = 0;  // times a stream submit found the sink full
  uint64_t idle_closed = 0;    // stream clients closed: idle_timeout, or the
                               // idlest one when a new client found all taken
  uint64_t kernel_drops = 0;   // datagrams the kernel dropped: receive buffer full
};

struct PushOptions {
  int64_t idle_timeout_us = 300 * 1000000ll;  // 0: never
  size_t max_clients = 1024;
  int rcvbuf_bytes = 0;  // datagram listeners: SO_RCVBUF (0: the system's default)
};

// Factory registered as "push".
StatusOr<std::unique_ptr<Driver>> CreatePushDriver(const SensorSpec& spec, Params& params,
                                                   DriverContext& ctx);

// Start()/Stop() from one controlling thread; stats(), port() thread-safe.
class PushDriver final : public Driver {
 public:
  // `clock` must outlive the driver.
  PushDriver(std::string name, ListenAddress address, Clock& clock,
             PushOptions options = PushOptions());
  ~PushDriver() override;  // Stop()s.

  bool polled() const override { return false; }
  // Binds and starts the listener thread. Errors: bind failures (address in
  // use, permission), a non-socket file at a unix PATH. `sink` must outlive
  // Stop().
  Status Start(ReadingSink& sink) override;
  void Stop() override;

  // The bound TCP/UDP port once started (useful with port 0); 0 otherwise.
  int port() const { return bound_port_.load(); }
  const ListenAddress& address() const { return address_; }
  PushStats stats() const;
  // A listener: "listen" and the PushStats counters, in that order.
  DriverStatus Report() const override;

 private:
  struct Client;
  Status Bind();
  void StreamLoop();
  void DatagramLoop();
  // Feeds stream bytes; returns false when stopping.
  bool FeedStream(Client& c, const char* data, size_t n);
  // Handles one complete line; returns false when stopping.
  bool HandleLine(std::string_view line, bool stream);
  void BadLine(const std::string& why);
  // Counts what SO_RXQ_OVFL's running count in a recvmsg control block says
  // was dropped since the last datagram.
  void NoteKernelDrops(const struct msghdr& msg);
  void CloseFds();

  std::string name_;
  ListenAddress address_;
  const PushOptions options_;
  std::string display_;  // address_ with the bound port, for logs
  Clock& clock_;
  RateLimitedLog bad_log_;
  RateLimitedLog drop_log_;
  ReadingSink* sink_ = nullptr;

  int listen_fd_ = -1;
  int wake_fd_ = -1;
  bool unlink_on_stop_ = false;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> bound_port_{0};

  std::atomic<uint64_t> lines_ok_{0};
  std::atomic<uint64_t> lines_bad_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> clients_{0};
  std::atomic<uint64_t> clients_total_{0};
  std::atomic<uint64_t> backpressure_waits_{0};
  std::atomic<uint64_t> idle_closed_{0};
  std::atomic<uint64_t> kernel_drops_{0};
  uint32_t last_ovfl_ = 0;  // the kernel's running drop count (datagram thread)
};

}  // namespace sluice
