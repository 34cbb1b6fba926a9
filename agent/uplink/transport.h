// The narrow seam between an uplink and an MQTT broker. Two implementations:
// libmosquitto (agent/uplink/mosquitto_transport.cpp, the default) and Paho
// (agent/uplink/paho_transport.cpp, which converts mqtt::exception into Status at
// this boundary); tests use a real Mosquitto.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/broker_address.h"
#include "common/status.h"

namespace sluice {

struct TlsOptions {
  bool enabled = false;     // set from broker.tls by the transports
  std::string ca_file;      // empty: the system's default trust store
  std::string cert_file;    // client certificate (PEM), optional
  std::string key_file;     // client key (PEM), optional
  bool verify = true;       // verify the server certificate and host name
};

struct TransportOptions {
  BrokerAddress broker;     // parsed once, from the config; an empty host is refused
  std::string client_id;
  std::string username;     // empty: none
  std::string password;     // read from password_file; never logged
  TlsOptions tls;
  int keepalive_s = 30;
  int64_t connect_timeout_us = 10000000;
  // Upper bound on messages the caller keeps in flight; sizes the client's
  // queues (Paho's maxBufferedMessages and maxInflight) with a margin for
  // status messages.
  size_t max_inflight = 256;
  // Last will: `will_payload` retained at QoS 1 on will_topic (empty: none).
  std::string will_topic;
  std::string will_payload = "offline";
};

// Callbacks from the transport's own thread(s). Implementations must be
// quick and thread-safe, and must not call back into the transport's
// Connect/Disconnect.
class TransportListener {
 public:
  virtual ~TransportListener() = default;
  // The connection dropped (not called after Disconnect()).
  virtual void OnConnectionLost(const std::string& cause) = 0;
  // The broker acknowledged the publish tagged `tag` (PUBACK for QoS 1,
  // hand-off to the socket for QoS 0). With *resumed = true it may arrive
  // after a reconnect for a publish accepted before it; an ack is always
  // truthful.
  virtual void OnPublishAcked(uint64_t tag) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Connects within connect_timeout; blocking. May be called again after a
  // lost connection or Disconnect(). Errors carry the broker's or the
  // socket's reason.
  //
  // *resumed (may be null) tells what became of the messages accepted by
  // Publish() before this call and not yet acknowledged:
  //   true:  every one of them will still be delivered, in the order it was
  //          accepted and ahead of anything published after this call, and
  //          acknowledged through the listener with its tag. One that had
  //          already reached the broker may arrive once more (an MQTT DUP
  //          resend), so a loss adds at most one duplicate per message.
  //   false: they are gone (a first connect, or a fresh client); the caller
  //          sends again whatever it still needs, and no ack for them will
  //          arrive any more.
  virtual Status Connect(bool* resumed) = 0;
  Status Connect() { return Connect(nullptr); }
  // Queues one message; never blocks on the network. An error means it was
  // not queued (not connected, too many in flight). Safe against concurrent
  // Publish calls, but not against a concurrent Connect/Disconnect (one
  // uplink thread drives a transport).
  virtual Status Publish(const std::string& topic, const void* payload,
                         size_t size, int qos, bool retained, uint64_t tag) = 0;
  // Waits up to timeout_us for the acknowledgements of what is in flight,
  // then disconnects cleanly (DISCONNECT: the broker drops the will).
  // Unacknowledged messages stay with the transport for the next Connect().
  // Returns as soon as nothing is in flight. Idempotent.
  virtual void Disconnect(int64_t timeout_us) = 0;
  virtual bool IsConnected() const = 0;
  // Microseconds since the broker last sent anything on this connection,
  // PINGRESPs included; -1 when the transport cannot tell (then the uplink
  // goes by acknowledgements alone). Called by the thread that drives the
  // transport.
  virtual int64_t InboundSilenceUs() const { return -1; }
};

// Maps a Sluice upstream URL to Paho's form (ParseBrokerAddress, then
// BrokerAddress::PahoUri()): mqtt:// and tcp:// -> tcp://, mqtts:// and
// ssl:// -> ssl://; a missing port becomes 1883 / 8883. Sets *tls.
StatusOr<std::string> NormalizeBrokerUrl(const std::string& url, bool* tls);

// A Paho MQTT client (a fresh one per connection: never resumes). `listener`
// must outlive the transport. Fails on a bad URL (no network activity
// happens before Connect()).
StatusOr<std::unique_ptr<Transport>> NewPahoTransport(
    const TransportOptions& options, TransportListener* listener);

// A libmosquitto client (agent/uplink/mosquitto_transport.cpp; a fresh `struct
// mosquitto` per connection: never resumes). Same contract and errors as
// NewPahoTransport; no network activity before Connect().
StatusOr<std::unique_ptr<Transport>> NewMosquittoTransport(
    const TransportOptions& options, TransportListener* listener);

// What every transport checks before it is created: a listener, a client id
// and a broker; tls.enabled follows the broker's scheme.
inline StatusOr<TransportOptions> PrepareTransportOptions(const TransportOptions& options,
                                                          const TransportListener* listener) {
  if (listener == nullptr) return InvalidArgument("transport: no listener");
  if (options.client_id.empty()) return InvalidArgument("transport: empty client id");
  if (options.broker.host.empty()) return InvalidArgument("transport: no broker address");
  TransportOptions opts = options;
  opts.tls.enabled = options.broker.tls;
  return opts;
}

}  // namespace sluice
