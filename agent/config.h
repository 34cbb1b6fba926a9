// sluiced's configuration file (TOML, CONTRACT.md "Configuration").
// Parsing is strict: unknown keys and wrong types are errors that name
// FILE:LINE:COL.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "buffer/ring.h"
#include "common/broker_address.h"
#include "common/status.h"
#include "drivers/driver.h"

namespace sluice {

struct AgentConfig {
  std::string id;
  std::string data_dir = "/var/lib/sluice";
  std::string control_socket = "/run/sluice/control.sock";
  int64_t shutdown_grace_us = 5000000;
  std::string log_level = "info";
  // HTTP /metrics listener ("HOST:PORT", "[V6]:PORT" or ":PORT" for
  // 127.0.0.1); empty: none. Numeric addresses only.
  std::string metrics_listen;
  std::string metrics_host;  // parsed from metrics_listen
  int metrics_port = 0;
  bool metrics_loopback = true;
};

struct BufferConfig {
  uint64_t max_events = 1000000;
  uint64_t max_bytes = 256ull << 20;
  Durability durability = Durability::kNormal;
  int64_t commit_interval_us = 20000;
  int64_t sync_interval_us = 10000000;  // durability normal: fsync at least this often
};

struct SensorConfig {
  SensorSpec spec;
  // The sensor's params table (owned by Config::document), or null.
  const toml::table* params = nullptr;
  int line = 0;
  int column = 0;
};

struct RulesConfig {
  std::vector<std::string> files;
  int64_t late_tolerance_us = 5000000;
  int64_t max_future_us = 86400000000;
};

enum class PayloadFormat { kJson, kFlatbuffers };

// The MQTT client library an uplink uses (`client` key).
enum class MqttClient { kMosquitto, kPaho };

struct UpstreamConfig {
  std::string name;
  std::string url;             // as written (shown by status, credentials refused)
  BrokerAddress broker;        // url, parsed
  std::string client_id;       // default: agent.id
  MqttClient client = MqttClient::kMosquitto;  // "mosquitto" | "paho"
  std::string topic = "sluice/{agent}/{sensor}";
  std::string alert_topic = "sluice/{agent}/alerts/{rule}";
  std::string status_topic = "sluice/{agent}/status";
  int qos = 1;
  PayloadFormat format = PayloadFormat::kJson;
  size_t batch_max_events = 256;
  size_t max_inflight = 256;
  std::string username;
  std::string password_file;
  bool tls = false;            // from the url scheme
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  bool tls_verify = true;
  int keepalive_s = 30;
  int64_t connect_timeout_us = 10000000;
  int64_t reconnect_min_us = 500000;
  int64_t reconnect_max_us = 30000000;
};

struct Config {
  std::string path;
  AgentConfig agent;
  BufferConfig buffer;
  std::vector<SensorConfig> sensors;
  RulesConfig rules;
  std::vector<UpstreamConfig> upstreams;
  // The parsed document; SensorConfig::params point into it.
  std::shared_ptr<toml::table> document;
};

// Reads and validates `path`. Errors: "FILE:LINE:COL: what is wrong".
// Driver params are validated later, when the registry creates drivers.
StatusOr<Config> LoadConfig(const std::string& path);
// The same, from text (tests). `path` names it in errors.
StatusOr<Config> ParseConfig(const std::string& text, const std::string& path);

}  // namespace sluice
