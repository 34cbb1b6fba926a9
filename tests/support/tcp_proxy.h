// An in-process loopback TCP forwarder: 127.0.0.1:port() -> 127.0.0.1:target.
// Cut() closes every connection and refuses new ones (the listening socket
// is closed, so connects get ECONNREFUSED); Restore() listens again on the
// same port. Used to simulate a link cut between an uplink and its broker.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice {
namespace testing {

class TcpProxy {
 public:
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  // Listens on a free loopback port. Returns false on failure.
  bool Start();
  // Closes all connections and the listener; returns once they are closed.
  void Cut();
  // Listens again on the same port. Returns false if the port is gone.
  bool Restore();

  int port() const { return port_; }
  // "tcp://127.0.0.1:PORT".
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  // Connections accepted so far.
  int accepted() const { return accepted_.load(); }
  // From now on, every accepted connection is cut `us` after it was
  // accepted (0: never), like a broker that accepts and then drops every
  // client. Keep it short: Cut() waits for pending cuts.
  void set_drop_after_us(int64_t us) { drop_after_us_ = us; }

 private:
  struct Conn {
    int client_fd = -1;
    int server_fd = -1;
    std::thread up;
    std::thread down;
    std::thread dropper;  // set_drop_after_us
  };

  bool Listen();
  void AcceptLoop(int listen_fd);
  static void Pump(int from, int to);
  // Shuts down and joins everything; REQUIRES: mu_ not held.
  void CloseAll();

  const int target_port_;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<int64_t> drop_after_us_{0};
  std::mutex mu_;
  int listen_fd_ = -1;
  std::thread accept_thread_;
  std::vector<std::unique_ptr<Conn>> conns_;
  bool cut_ = false;
};

}  // namespace testing
}  // namespace sluice
