// The narrow seam between an uplink and an MQTT broker. The real
// implementation wraps Paho (agent/paho_transport.cpp) and converts
// mqtt::exception into Status at this boundary; tests use a real Mosquitto.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace sluice {

struct TlsOptions {
  bool enabled = false;     // mqtts:// or ssl://
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool verify = true;
};

struct TransportOptions {
  std::string url;          // mqtt:// tcp:// mqtts:// ssl://
  std::string client_id;
  std::string username;     // empty: none
  std::string password;     // read from password_file; never logged
  TlsOptions tls;
  int keepalive_s = 30;
  int64_t connect_timeout_us = 10000000;
  size_t max_inflight = 256;
  // Last will: `offline` retained on will_topic (empty: no will).
  std::string will_topic;
  std::string will_payload = "offline";
};

// Callbacks from the transport's own thread(s). Implementations must be
// quick and thread-safe.
class TransportListener {
 public:
  virtual ~TransportListener() = default;
  // The connection dropped (not called after Disconnect()).
  virtual void OnConnectionLost(const std::string& cause) = 0;
  // The broker acknowledged the publish tagged `tag` (PUBACK for QoS 1,
  // hand-off to the socket for QoS 0).
  virtual void OnPublishAcked(uint64_t tag) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Connects (clean session) within connect_timeout; blocking.
  virtual Status Connect() = 0;
  // Queues one message; never blocks on the network. An error means it was
  // not queued (not connected, too many in flight). Thread-safe.
  virtual Status Publish(const std::string& topic, const void* payload,
                         size_t size, int qos, bool retained, uint64_t tag) = 0;
  // Disconnects, waiting up to timeout_us for queued messages.
  virtual void Disconnect(int64_t timeout_us) = 0;
  virtual bool IsConnected() const = 0;
};

// A Paho MQTT client. `listener` must outlive the transport.
StatusOr<std::unique_ptr<Transport>> NewPahoTransport(
    const TransportOptions& options, TransportListener* listener);

}  // namespace sluice
