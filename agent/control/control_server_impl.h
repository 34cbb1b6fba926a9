// Private to sluice_control: the server's state, shared by
// control_server.cpp (unix socket, connections, the poll loop) and
// control_http.cpp (the HTTP /metrics listener). Server thread only unless
// a member says otherwise.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <list>
#include <mutex>
#include <string>
#include <thread>

#include "agent/control/control_server.h"

namespace sluice {
namespace control_internal {

constexpr size_t kMaxHttpHeader = 8 << 10;

// "WHAT: strerror(errno)".
inline std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// One accepted connection (control socket or HTTP).
struct Conn {
  int fd = -1;
  bool http = false;
  bool eof = false;          // the peer closed its side
  bool close_after = false;  // close once `out` is written
  std::string in;
  std::string out;
  size_t out_pos = 0;
  int64_t last_us = 0;  // last progress
  // When the request now being read began (0: none). A request must be
  // complete within idle_timeout of its first byte, however slowly it
  // trickles in; an HTTP connection's one request counts from accept.
  int64_t request_us = 0;
  bool pending() const { return out_pos < out.size(); }
};

}  // namespace control_internal

using control_internal::Conn;

struct ControlServer::Impl {
  ControlServerOptions opt;
  Handler handler;
  MetricsText metrics;
  int unix_fd = -1;
  int http_fd = -1;
  int wake[2] = {-1, -1};
  dev_t sock_dev = 0;
  ino_t sock_ino = 0;
  std::list<Conn> conns;  // server thread only
  // Out of file descriptors: accepting waits until then (the pending
  // connection would otherwise keep poll() returning at once).
  int64_t accept_paused_until_us = 0;  // server thread only
  std::thread thread;
  std::atomic<bool> stop{false};
  bool stopped = false;
  mutable std::mutex mu;
  ControlServerStats stats;  // guarded by mu

  ~Impl() { CloseAll(); }

  void Count(uint64_t ControlServerStats::*field) {
    std::lock_guard<std::mutex> lk(mu);
    ++(stats.*field);
  }

  Status BindUnix();
  Status BindHttp(int* port);
  void CloseAll();
  void Run();
  void Accept(int listen_fd, bool http);
  // Full: closes the connection of this listener that has been idle longest
  // to make room. False if none is idle.
  bool EvictOldestIdle(bool http);
  void ReadFrom(Conn& c);
  void WriteTo(Conn& c);
  void Process(Conn& c);
  void ProcessControl(Conn& c);
  void ProcessHttp(Conn& c);
  std::string Answer(const std::string& line);
};

}  // namespace sluice
