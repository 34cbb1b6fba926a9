// What one uplink needs to know about its upstream: one [[upstream]] table
// of the configuration (CONTRACT.md "Configuration"), as the config parser
// (agent/config/) fills it and tests build it. Plain values; the uplink
// copies it and never sees the rest of the configuration.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/broker_address.h"

namespace sluice {

enum class PayloadFormat { kJson, kFlatbuffers };

// The MQTT client library an uplink uses (`client` key).
enum class MqttClient { kMosquitto, kPaho };

struct UplinkOptions {
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

}  // namespace sluice
