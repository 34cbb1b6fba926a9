// A real Mosquitto broker on a free 127.0.0.1 port, for integration tests.
// Config and log live in the broker's own TempDir. Stopped by PID (SIGTERM,
// then SIGKILL after a bounded wait) in Stop() and the destructor.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tests/support/process.h"
#include "tests/support/support.h"

namespace sluice {
namespace testing {

class MosquittoBroker {
 public:
  struct Options {
    bool persistence = false;   // on: in the temp dir, saved on SIGTERM
    std::string extra_config;   // appended verbatim (e.g. TLS listeners)
    std::string binary = "/usr/sbin/mosquitto";
    int port = 0;               // 0: a free loopback port
  };

  MosquittoBroker() : MosquittoBroker(Options()) {}
  explicit MosquittoBroker(Options options);
  ~MosquittoBroker();

  // Picks a free port (first call only), writes the config, starts the
  // broker and waits (bounded) until the port accepts connections. Returns
  // false with the broker's log in *error on failure.
  bool Start(std::string* error = nullptr);
  // Graceful stop: SIGTERM, SIGKILL after 5 s; always reaped.
  void Stop();
  // Abrupt stop: SIGKILL and reap.
  void Kill();
  // Stop() then Start() on the same port.
  bool Restart(std::string* error = nullptr);
  // SIGSTOP / SIGCONT: a paused broker keeps its sockets open but reads and
  // acknowledges nothing (messages stay in flight). Stop() resumes first.
  void Pause();
  void Resume();

  bool running() const { return process_.running(); }
  int port() const { return port_; }
  // "tcp://127.0.0.1:PORT".
  std::string url() const;
  std::string log() const;
  const std::string& dir() const { return dir_.path(); }

 private:
  Options options_;
  TempDir dir_;
  int port_ = -1;
  Process process_;
};

}  // namespace testing
}  // namespace sluice
