// sluiced's local control surface: the control socket (a Unix stream socket
// speaking one JSON object per line) and the optional HTTP /metrics
// listener, both served by one thread with poll() over non-blocking
// sockets.
//
// Control protocol: a client writes one request per line,
// `{"cmd":"status"}`, and reads one response line per request, in order:
// `{"ok":true,...}` or `{"ok":false,"error":"..."}`. Several requests may
// share a connection. The handler decides what `cmd` means.
//
// Bounds (a slow or hostile client can neither block the thread nor make
// it allocate without bound): at most max_clients connections per listener;
// when all are taken, a new client closes the one that has been idle
// longest (no request begun, nothing to send; it gets an error line saying
// why), so idle clients, even ones that reconnect at once, can never lock an
// operator out (a new client's request, already sent, is read as it is
// accepted, so it is busy before anyone else needs its slot); if none is
// idle, the new client is closed at once, with a "too many clients" line; a request line over max_request_bytes gets an error and the
// connection is closed; the next request of a connection is read only once
// the previous response was written, and a response over max_response_bytes
// is replaced by an error; a connection that makes no progress (reads
// nothing, takes none of its response) for idle_timeout_us is closed, and so
// is one whose request is not complete idle_timeout_us after its first byte
// (a trickle cannot hold a slot); out of file descriptors, accepting pauses
// for 100 ms instead of spinning. HTTP
// requests are bounded the same way (headers up to 8 KiB, one request per
// connection, HTTP/1.0 semantics: the response ends with the connection).
//
// The socket file: created mode 0660 (owned by the daemon's user and
// group); a stale file from a crash (nobody accepts on it) is replaced; a
// socket a live process accepts on is left alone and Start() fails; removed
// by Stop() if it is still ours.
//
// Thread-safety: Start() and Stop() from one thread; stats() and
// metrics_port() from any. Handlers run on the server thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/json_parse.h"
#include "common/net.h"  // UnixSocketAnswers, for the control socket's users
#include "common/status.h"

namespace sluice {

struct ControlServerOptions {
  std::string socket_path;   // the control socket
  std::string metrics_host;  // "" : no HTTP listener
  int metrics_port = 0;      // 0 with a host: any free port (tests)
  size_t max_clients = 16;   // per listener
  size_t max_request_bytes = 64 << 10;
  size_t max_response_bytes = 16 << 20;
  int64_t idle_timeout_us = 10000000;
};

// Counters since Start(). Plain values.
struct ControlServerStats {
  uint64_t clients = 0;       // connections accepted (both listeners)
  uint64_t rejected = 0;      // closed at once: too many clients
  uint64_t evicted = 0;       // idle clients closed to make room for a new one
  uint64_t requests = 0;      // control requests answered
  uint64_t bad_requests = 0;  // not JSON, no "cmd", unknown cmd
  uint64_t oversized = 0;     // request lines / HTTP headers too long
  uint64_t timeouts = 0;      // closed for idleness
  uint64_t http_requests = 0;
};

class ControlServer {
 public:
  // Answers one parsed request whose "cmd" is `cmd`: the complete response
  // object (without the newline), or an error status whose message becomes
  // {"ok":false,"error":...}.
  using Handler =
      std::function<StatusOr<std::string>(const std::string& cmd, const JsonValue& request)>;
  // The Prometheus text for GET /metrics.
  using MetricsText = std::function<std::string()>;

  // Binds the socket (and the HTTP listener if configured) and starts the
  // thread. Errors name the path or address and why.
  static StatusOr<std::unique_ptr<ControlServer>> Start(const ControlServerOptions& options,
                                                        Handler handler, MetricsText metrics);
  ~ControlServer();  // Stop()s.
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Closes every connection, joins the thread, removes the socket file.
  // Idempotent.
  void Stop();

  ControlServerStats stats() const;
  // The bound HTTP port (0: no listener).
  int metrics_port() const { return metrics_port_; }

 private:
  struct Impl;
  explicit ControlServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  int metrics_port_ = 0;
};

}  // namespace sluice
