// `driver = "mqtt"`: subscribes on a (local) MQTT broker and turns each
// message into a reading of this sensor. An active driver: Start() runs a
// libmosquitto client on its own thread; nothing is polled.
//
// Params:
//   url        (required)  mqtt://HOST[:PORT] or tcp://HOST[:PORT] (1883 if
//                          absent; [v6] addresses in brackets). No TLS.
//   topic      (required)  a topic filter; `+` and `#` wildcards allowed (all
//                          matching messages are readings of this sensor)
//   json_path              absent: the payload is a plain number ("21.5");
//                          set: the payload is JSON and this simple path
//                          ("$.sensors.temp", "$.values[0]", "$['a b']")
//                          selects a number (true/false give 1/0; a string
//                          holding a number is read as that number)
//   qos        = 0         subscription QoS, 0 .. 2
//   username               optional; password_file: a file holding the
//   password_file          password (trailing newline ignored), read at Start()
//   client_id              default: random (clean session)
//
// Readings: value × scale + offset, deadband and heartbeat as for polled
// sensors, timestamp = the wall clock when the message arrived, quality
// good. A payload that is not a number (or lacks the path) is counted in
// `bad_payloads` and logged (rate-limited, component "mqtt"), never a stop.
// A reading the pipeline refuses for 250 ms is dropped and counted.
// Connection: lost or refused connections are retried with capped, jittered
// backoff (500 ms .. 30 s; reset only after a connection that lasted
// kStableConnectionUs, 30 s: a broker that accepts and drops every
// connection is redialled ever more slowly); the subscription is renewed on
// every connect. "connected" and connection-error lines are rate limited.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/backoff.h"
#include "common/broker_address.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mosquitto_client.h"
#include "common/status.h"
#include "drivers/deadband.h"
#include "drivers/driver.h"

namespace sluice {

// Factory registered as "mqtt".
StatusOr<std::unique_ptr<Driver>> CreateMqttDriver(const SensorSpec& spec, Params& params,
                                                   DriverContext& ctx);

// The number in a payload (see json_path above). Errors say why
// ("not a number: \"abc\"", "not JSON: line 1 col 2: ...", "no $.a.b in the
// payload", "$.a is an object, not a number").
StatusOr<double> ParseMqttPayload(std::string_view payload, const std::string& json_path);

// True if `path` is a simple JSON path JsonValue::AtPath understands.
bool ValidJsonPath(const std::string& path);

struct MqttSourceOptions {
  BrokerAddress broker;  // plain MQTT (no TLS)
  std::string topic;
  std::string json_path;
  int qos = 0;
  std::string username;
  std::string password_file;
  std::string client_id;
  int keepalive_s = 30;
  int64_t reconnect_min_us = 500 * 1000;
  int64_t reconnect_max_us = 30 * 1000000ll;
};

struct MqttSourceStats {
  bool connected = false;
  bool subscribed = false;  // SUBACK granted on the current connection
  uint64_t connects = 0;    // successful CONNACKs
  uint64_t messages = 0;    // messages received (counted on arrival)
  uint64_t readings = 0;    // readings the sink accepted (counted once it did)
  uint64_t bad_payloads = 0;
  uint64_t consecutive_bad = 0;  // bad payloads since the last good one
  int64_t last_bad_ts_us = 0;    // wall time of the last bad payload
  int64_t last_message_ts_us = 0;  // wall time of the last message, good or bad
  uint64_t suppressed = 0;  // held back by the deadband
  uint64_t dropped = 0;     // refused by a full sink
  std::string last_error;   // last connection or payload problem
  bool has_value = false;   // a payload was parsed
  double last_value = 0;    // its value after scale/offset
  int64_t last_ts_us = 0;   // wall time it arrived
};

// Start()/Stop() from one controlling thread; stats() thread-safe.
class MqttDriver final : public Driver, private MosquittoListener {
 public:
  // `clock` must outlive the driver.
  MqttDriver(SensorSpec spec, MqttSourceOptions options, Clock& clock);
  ~MqttDriver() override;  // Stop()s

  bool polled() const override { return false; }
  // Reads the password file and starts the client thread; connection
  // problems are not errors here (they are retried and show in stats()).
  Status Start(ReadingSink& sink) override;
  // Disconnects and joins the thread, within about 100 ms plus one pending
  // Submit. Idempotent.
  void Stop() override;

  MqttSourceStats stats() const;
  // A sensor row (DriverStatus::Role::kSensor) made from stats().
  DriverStatus Report() const override;

 private:
  void Run();
  // MosquittoListener (the client thread).
  void OnConnect(int rc) override;
  void OnSubscribe(int mid, int granted_qos) override;
  void OnMessage(const MosquittoMessage& msg) override;
  void SetError(const std::string& error);
  // Waits up to `us` or until Stop(); false once stopping.
  bool Sleep(int64_t us);

  const SensorSpec spec_;
  const MqttSourceOptions options_;
  Clock& clock_;
  RateLimitedLog bad_log_;
  RateLimitedLog conn_log_;
  RateLimitedLog up_log_;  // "connected"
  ReadingSink* sink_ = nullptr;
  std::string password_;

  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;

  // Network thread only.
  std::unique_ptr<MosquittoClient> client_;
  DeadbandFilter deadband_;
  ReconnectBackoff backoff_;

  mutable std::mutex mu_;
  MqttSourceStats stats_;
};

}  // namespace sluice
