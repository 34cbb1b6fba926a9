// A real libmodbus server for tests: TCP on 127.0.0.1:PORT, or RTU on the
// master side of a pseudo-terminal (the driver opens the slave path). It
// serves a modbus_mapping_t of 100 bits, input bits, holding and input
// registers (addresses >= 100 get an "illegal data address" exception) on
// a thread of its own until Stop(). Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

typedef struct _modbus modbus_t;
typedef struct _modbus_mapping_t modbus_mapping_t;

namespace sluice {
namespace testing {

class ModbusTestServer {
 public:
  static constexpr int kSize = 100;

  // TCP on 127.0.0.1:port.
  explicit ModbusTestServer(int port);
  // RTU as unit `unit` on the pty master `master_fd` (not owned).
  ModbusTestServer(int master_fd, int unit);
  ~ModbusTestServer();  // Stop()s

  // Listens (TCP) and starts serving. False with a message on failure.
  bool Start(std::string* error);
  // Closes every connection and the listener; joins. Idempotent.
  void Stop();

  void SetHolding(int address, const std::vector<uint16_t>& regs);
  void SetInput(int address, const std::vector<uint16_t>& regs);
  void SetCoil(int address, bool on);
  void SetDiscrete(int address, bool on);

  // TCP: answer holding-register reads with MBAP length 65535 followed by
  // the correct PDU and `extra` stray bytes (a misbehaving device).
  void SetBadLength(bool on, int extra = 100) {
    bad_extra_ = extra;
    bad_length_ = on;
  }

  int accepts() const { return accepts_.load(); }
  int requests() const { return requests_.load(); }

 private:
  void Loop();

  const bool rtu_;
  const int port_;
  const int master_fd_;
  const int unit_;
  modbus_t* ctx_ = nullptr;
  modbus_mapping_t* map_ = nullptr;
  std::mutex map_mu_;  // guards map_ contents
  int listen_fd_ = -1;
  std::vector<int> clients_;  // server thread only
  std::atomic<bool> stop_{false};
  std::atomic<int> accepts_{0};
  std::atomic<int> requests_{0};
  std::atomic<bool> bad_length_{false};
  std::atomic<int> bad_extra_{100};
  std::thread thread_;
};

}  // namespace testing
}  // namespace sluice
