// A Mosquitto broker for sluice-bench on a loopback port, with its config,
// log and persistence in its own directory; stopped by PID.
#pragma once

#include <string>

#include "bench/util.h"

namespace sluice {
namespace bench {

class Broker {
 public:
  // `dir` must exist and outlive the broker. `port` 0: pick a free one on
  // the first Start() and keep it for restarts.
  Broker(std::string name, std::string dir, int port = 0);
  ~Broker();

  // Writes mosquitto.conf (our base settings plus `extra`) and starts the
  // broker; waits (bounded) until the port accepts connections.
  bool Start(const std::string& extra, std::string* error);
  // SIGTERM (persistence saved), SIGKILL after 20 s; reaped.
  void Stop();

  int port() const { return port_; }
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return child_.pid(); }
  bool running() const { return child_.running(); }
  const std::string& dir() const { return dir_; }
  std::string log() const { return ReadFile(dir_ + "/mosquitto.log"); }

 private:
  std::string name_;
  std::string dir_;
  int port_;
  Child child_;
};

// The settings every broker of the bench shares.
std::string BaseBrokerConfig();

}  // namespace bench
}  // namespace sluice
