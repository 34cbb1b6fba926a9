// One Modbus connection (TCP socket or RTU serial port) shared by every
// sensor that names the same device, through libmodbus.
//
// Sensors sampled on the worker pool may call Read() concurrently: a mutex
// serialises whole transactions (set unit, request, response). After an I/O
// error the connection is closed and reopened on the next Read(); a failed
// (re)connect is retried only after a capped, jittered backoff shared by
// all sensors of the device, so a dead device is not hammered. A Modbus
// exception response (illegal address...) keeps the connection. TCP
// responses are framed by modbus_tcp_frame.h: one whose MBAP length does
// not match its PDU is an error that resets the connection (nothing of it
// is returned, and nothing left over reaches the next transaction).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/status.h"
#include "drivers/shared_devices.h"
#include "drivers/modbus/modbus_codec.h"

typedef struct _modbus modbus_t;

namespace sluice {

struct ModbusEndpoint {
  bool rtu = false;
  // TCP
  std::string host;
  int port = 502;
  // RTU
  std::string device;
  int baud = 9600;
  char parity = 'N';  // N, E, O
  int data_bits = 8;
  int stop_bits = 1;

  // What identifies the shared connection: "tcp://host:port" or
  // "rtu://<device>".
  std::string Key() const;
  // Key() plus the serial settings, for messages and conflict checks.
  std::string Describe() const;
};

// Parses "tcp://HOST[:PORT]" (port 502 by default), "rtu://DEVICE[?baud=
// 9600&parity=N&data_bits=8&stop_bits=1]" or a bare device path
// ("/dev/ttyUSB0"). `query_keys` receives the serial settings the query
// gave. Errors are plain messages (the caller adds the config location).
StatusOr<ModbusEndpoint> ParseModbusUrl(const std::string& url,
                                        std::vector<std::string>* query_keys);

// Sets one serial setting from text: baud (a standard rate), parity (N, E,
// O, none, even, odd), data_bits (5-8), stop_bits (1-2).
Status SetModbusSerialSetting(ModbusEndpoint* ep, const std::string& key, const std::string& value);

struct ModbusLinkOptions {
  int64_t reconnect_min_us = 500000;
  int64_t reconnect_max_us = 30000000;
  bool operator==(const ModbusLinkOptions& o) const {
    return reconnect_min_us == o.reconnect_min_us && reconnect_max_us == o.reconnect_max_us;
  }
};

// Thread-safe.
class ModbusLink {
 public:
  ModbusLink(ModbusEndpoint endpoint, ModbusLinkOptions options, Clock& clock, std::string owner);
  ~ModbusLink();
  ModbusLink(const ModbusLink&) = delete;
  ModbusLink& operator=(const ModbusLink&) = delete;

  // Reads `count` registers (or bits, as 0/1) from `table` at `address` of
  // `unit`, connecting first if needed. `timeout_us` bounds the connect and
  // the response each. Errors name the device, the unit, what was read and
  // libmodbus's message; kUnavailable while waiting out the backoff.
  StatusOr<std::vector<uint16_t>> Read(int unit, ModbusTable table, int address, int count,
                                       int64_t timeout_us);

  const ModbusEndpoint& endpoint() const { return endpoint_; }
  const ModbusLinkOptions& options() const { return options_; }
  // The sensor that first opened this device (for conflict messages).
  const std::string& owner() const { return owner_; }
  // Successful connects so far (1 while the first connection lasts).
  uint64_t connects() const;

 private:
  Status ConnectLocked(int64_t timeout_us);
  void CloseLocked();

  const ModbusEndpoint endpoint_;
  const ModbusLinkOptions options_;
  Clock& clock_;
  const std::string owner_;

  mutable std::mutex mu_;  // guards everything below
  modbus_t* ctx_ = nullptr;
  bool connected_ = false;
  Backoff backoff_;
  int64_t next_attempt_us_ = 0;
  std::string last_error_;
  uint64_t connects_ = 0;
  uint16_t tid_ = 0;  // the last TCP transaction id sent
};

// The live link in `devices` for `endpoint` (shared by every sensor holding
// it) or a new one. Error (a plain message) when the device is already open
// with other serial settings or reconnect options. Thread-safe.
StatusOr<std::shared_ptr<ModbusLink>> AcquireModbusLink(SharedDevices& devices,
                                                        const ModbusEndpoint& endpoint,
                                                        const ModbusLinkOptions& options,
                                                        Clock& clock, const std::string& sensor);

}  // namespace sluice
