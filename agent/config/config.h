// sluiced's configuration file (TOML, CONTRACT.md "Configuration").
// Parsing is strict: unknown keys and wrong types are errors that name
// FILE:LINE:COL.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "agent/uplink/uplink_options.h"
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

struct Config {
  std::string path;
  AgentConfig agent;
  BufferConfig buffer;
  std::vector<SensorConfig> sensors;
  RulesConfig rules;
  std::vector<UplinkOptions> upstreams;  // [[upstream]], validated
  // The parsed document; SensorConfig::params point into it.
  std::shared_ptr<toml::table> document;
};

// Reads and validates `path`. Errors: "FILE:LINE:COL: what is wrong".
// Driver params are validated later, when the registry creates drivers.
StatusOr<Config> LoadConfig(const std::string& path);
// The same, from text (tests). `path` names it in errors.
StatusOr<Config> ParseConfig(const std::string& text, const std::string& path);

}  // namespace sluice
