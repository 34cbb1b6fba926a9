#include "agent/config/config.h"

#include "agent/config/config_section.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "common/build_options.h"
#include "common/log.h"
#include "common/redact_url.h"
#include "common/toml_parse.h"
#include "common/units.h"

namespace sluice {
namespace {

using config_detail::Errors;
using config_detail::Section;

constexpr int64_t kSecondUs = 1000000;
constexpr int64_t kHourUs = 3600 * kSecondUs;
constexpr int64_t kDayUs = 24 * kHourUs;

constexpr const char* kCredentialsGo =
    "the user name belongs in \"username\" and the password in the file named by "
    "\"password_file\"";

bool ValidName(const std::string& s, size_t max) {
  static const std::regex re("[A-Za-z0-9._-]+");
  return !s.empty() && s.size() <= max && std::regex_match(s, re);
}

// A publish topic template: known {placeholders} only, no MQTT wildcards
// (a broker refuses to publish on them), within MQTT's 65,535 bytes.
void CheckTemplate(Section& sec, const std::string& key, const std::string& value,
                   const std::set<std::string>& allowed) {
  if (value.empty() || value.size() > 60000) {
    sec.ErrorAtKey(key, "\"" + key + "\" must be 1..60000 bytes");
    return;
  }
  if (value.find_first_of(std::string("+#\0", 3)) != std::string::npos) {
    sec.ErrorAtKey(key, "\"" + key + "\" must not hold the MQTT wildcards + and # (it names "
                                      "the topic to publish on)");
    return;
  }
  size_t pos = 0;
  while ((pos = value.find('{', pos)) != std::string::npos) {
    size_t end = value.find('}', pos);
    if (end == std::string::npos) {
      sec.ErrorAtKey(key, "\"" + key + "\" has an unclosed \"{\"");
      return;
    }
    std::string name = value.substr(pos + 1, end - pos - 1);
    if (!allowed.count(name)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "{" : ", {") + a + "}";
      sec.ErrorAtKey(key, "\"" + key + "\" uses unknown placeholder {" + name +
                              "} (known: " + list + ")");
      return;
    }
    pos = end + 1;
  }
}

// "HOST:PORT" / "[V6]:PORT" / ":PORT" -> numeric host and port; "" if fine,
// else what is wrong.
std::string ParseListen(const std::string& v, AgentConfig* a) {
  std::string host, port;
  if (!v.empty() && v[0] == '[') {
    size_t end = v.find(']');
    if (end == std::string::npos || end + 1 >= v.size() || v[end + 1] != ':') {
      return "must look like [ADDRESS]:PORT";
    }
    host = v.substr(1, end - 1);
    port = v.substr(end + 2);
  } else {
    size_t colon = v.rfind(':');
    if (colon == std::string::npos) return "must look like HOST:PORT (e.g. 127.0.0.1:9464)";
    host = v.substr(0, colon);
    port = v.substr(colon + 1);
    if (host.find(':') != std::string::npos) return "an IPv6 address goes in brackets: [::1]:PORT";
  }
  if (host.empty()) host = "127.0.0.1";
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return "the port must be a number in 1..65535";
  }
  unsigned char buf[16];
  bool v6 = host.find(':') != std::string::npos;
  if (inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), buf) != 1) {
    return "\"" + host + "\" is not a numeric IP address";
  }
  a->metrics_host = host;
  a->metrics_port = std::stoi(port);
  a->metrics_loopback = v6 ? host == "::1" : buf[0] == 127;
  return "";
}

void ParseAgent(Errors& errors, const toml::table& t, AgentConfig* a) {
  Section sec(errors, t, "[agent]");
  if (sec.String("id", &a->id, true) && !ValidName(a->id, 64)) {
    sec.ErrorAtKey("id", "\"id\" must match [A-Za-z0-9._-]{1,64}, not \"" + a->id + "\"");
  }
  if (sec.String("data_dir", &a->data_dir) && a->data_dir.empty()) {
    sec.ErrorAtKey("data_dir", "\"data_dir\" must not be empty");
  }
  if (sec.String("control_socket", &a->control_socket)) {
    if (a->control_socket.empty() || a->control_socket.size() >= 108) {
      sec.ErrorAtKey("control_socket", "\"control_socket\" must be a path of 1..107 bytes");
    }
  }
  if (sec.String("metrics_listen", &a->metrics_listen) && !a->metrics_listen.empty()) {
    std::string why = ParseListen(a->metrics_listen, a);
    if (!why.empty()) sec.ErrorAtKey("metrics_listen", "\"metrics_listen\" " + why);
  }
  sec.Duration("shutdown_grace", &a->shutdown_grace_us, 0, kHourUs);
  if (sec.String("log_level", &a->log_level)) {
    LogLevel level;
    if (!ParseLogLevel(a->log_level, &level)) {
      sec.ErrorAtKey("log_level", "\"log_level\" must be error, warn, info or debug");
    }
  }
  sec.Finish();
}

void ParseBuffer(Errors& errors, const toml::table& t, BufferConfig* b) {
  Section sec(errors, t, "[buffer]");
  int64_t max_events;
  if (sec.Integer("max_events", &max_events, 1, int64_t{1} << 40)) {
    b->max_events = static_cast<uint64_t>(max_events);
  }
  // SQLite's largest database is ~281 TB; 1 TiB is far above any gateway.
  sec.Size("max_bytes", &b->max_bytes, 64u << 10, 1ull << 40);
  std::string durability;
  if (sec.String("durability", &durability)) {
    if (durability == "off") b->durability = Durability::kOff;
    else if (durability == "normal") b->durability = Durability::kNormal;
    else if (durability == "full") b->durability = Durability::kFull;
    else sec.ErrorAtKey("durability", "\"durability\" must be off, normal or full, not \"" + durability + "\"");
  }
  // Below the writer-stall threshold (30 s) that turns the daemon unhealthy.
  sec.Duration("commit_interval", &b->commit_interval_us, 0, 10 * kSecondUs,
               "a reading waits at most one interval to be committed");
  sec.Duration("sync_interval", &b->sync_interval_us, kSecondUs / 1000, 3600 * kSecondUs,
               "the longest a committed reading waits for an fsync (durability normal)");
  sec.Finish();
}

void ParseSensor(Errors& errors, const toml::table& t, size_t index,
                 std::set<std::string>* names, SensorConfig* s) {
  Section sec(errors, t, "[[sensor]] #" + std::to_string(index + 1));
  s->line = static_cast<int>(t.source().begin.line);
  s->column = static_cast<int>(t.source().begin.column);
  if (sec.String("name", &s->spec.name, true)) {
    if (!ValidName(s->spec.name, 128)) {
      sec.ErrorAtKey("name", "\"name\" must match [A-Za-z0-9._-]{1,128}, not \"" + s->spec.name + "\"");
    } else if (!names->insert(s->spec.name).second) {
      sec.ErrorAtKey("name", "duplicate sensor name \"" + s->spec.name + "\"");
    }
  }
  sec.String("driver", &s->spec.driver, true);
  sec.Duration("interval", &s->spec.interval_us, 1000, 7 * kDayUs);
  sec.String("unit", &s->spec.unit);
  s->params = sec.Table("params");
  sec.Finish();
}

void ParseRules(Errors& errors, const toml::table& t, RulesConfig* r) {
  Section sec(errors, t, "[rules]");
  sec.StringList("files", &r->files);
  sec.Duration("late_tolerance", &r->late_tolerance_us, 0, kDayUs);
  sec.Duration("max_future", &r->max_future_us, 0, 7 * kDayUs);
  sec.Finish();
}

void ParseTls(Errors& errors, const toml::table& t, const std::string& owner, UplinkOptions* u) {
  Section sec(errors, t, owner + " tls");
  sec.String("ca_file", &u->tls_ca_file);
  sec.String("cert_file", &u->tls_cert_file);
  sec.String("key_file", &u->tls_key_file);
  sec.Bool("verify", &u->tls_verify);
  if (u->tls_cert_file.empty() != u->tls_key_file.empty()) {
    sec.Error(t, "\"cert_file\" and \"key_file\" go together");
  }
  sec.Finish();
}

void ParseUpstream(Errors& errors, const toml::table& t, size_t index, const AgentConfig& agent,
                   std::set<std::string>* names, UplinkOptions* u) {
  std::string label = "[[upstream]] #" + std::to_string(index + 1);
  Section sec(errors, t, label);
  if (!sec.String("name", &u->name)) u->name = index == 0 ? "upstream" : "upstream-" + std::to_string(index + 1);
  if (!ValidName(u->name, 64)) {
    sec.ErrorAtKey("name", "\"name\" must match [A-Za-z0-9._-]{1,64}, not \"" + u->name + "\"");
  } else if (!names->insert(u->name).second) {
    sec.ErrorAtKey("name", "duplicate upstream name \"" + u->name + "\"");
  }
  if (sec.String("url", &u->url, true)) {
    const std::string shown = "\"" + RedactUrl(u->url) + "\"";
    switch (ParseBrokerUrl(u->url, &u->broker)) {
      case BrokerUrlError::kNone: break;
      case BrokerUrlError::kCredentials:
        sec.ErrorAtKey("url", "\"url\" must not hold credentials (" + shown + "): " + kCredentialsGo);
        break;
      case BrokerUrlError::kPortRange:
        sec.ErrorAtKey("url", "\"url\" has a port outside 1..65535");
        break;
      case BrokerUrlError::kScheme:
      case BrokerUrlError::kHost:
      case BrokerUrlError::kPortSyntax:
        sec.ErrorAtKey("url", "\"url\" must look like mqtt://HOST:PORT or mqtts://HOST:PORT, not " +
                                  shown);
        break;
    }
    u->tls = u->broker.tls;
  }
  if (!sec.String("client_id", &u->client_id)) {
    u->client_id = agent.id;
  } else if (u->client_id.empty() || u->client_id.size() > 65535) {
    sec.ErrorAtKey("client_id", "\"client_id\" must be 1..65535 bytes");
  }
  std::string client;
  if (sec.String("client", &client)) {
    if (client == "mosquitto") u->client = MqttClient::kMosquitto;
    else if (client == "paho" && !SLUICE_TRANSPORT_PAHO)
      sec.ErrorAtKey("client", "\"client\" paho was left out of this build "
                               "(built with SLUICE_TRANSPORT_PAHO=OFF; sluiced --version "
                               "lists the transports built in)");
    else if (client == "paho") u->client = MqttClient::kPaho;
    else sec.ErrorAtKey("client", "\"client\" must be mosquitto or paho, not \"" + client + "\"");
  }
  if (sec.String("topic", &u->topic)) CheckTemplate(sec, "topic", u->topic, {"agent", "sensor"});
  if (sec.String("alert_topic", &u->alert_topic)) CheckTemplate(sec, "alert_topic", u->alert_topic, {"agent", "rule", "sensor"});
  if (sec.String("status_topic", &u->status_topic)) CheckTemplate(sec, "status_topic", u->status_topic, {"agent"});
  int64_t v;
  if (sec.Integer("qos", &v, 0, 1)) u->qos = static_cast<int>(v);
  std::string format;
  if (sec.String("format", &format)) {
    if (format == "json") u->format = PayloadFormat::kJson;
    else if (format == "flatbuffers") u->format = PayloadFormat::kFlatbuffers;
    else sec.ErrorAtKey("format", "\"format\" must be json or flatbuffers, not \"" + format + "\"");
  }
  if (sec.Integer("batch_max_events", &v, 1, 65536)) u->batch_max_events = static_cast<size_t>(v);
  if (sec.Integer("max_inflight", &v, 1, 65535)) u->max_inflight = static_cast<size_t>(v);
  if (sec.String("username", &u->username) && u->username.size() > 65535) {
    sec.ErrorAtKey("username", "\"username\" must be at most 65535 bytes (the MQTT limit)");
  }
  if (sec.String("password_file", &u->password_file) &&
      (u->password_file.empty() || u->username.empty())) {
    sec.ErrorAtKey("password_file", "\"password_file\" needs a path and \"username\" "
                                    "(MQTT sends a password only with a user name)");
  }
  if (const toml::table* tls = sec.Table("tls")) ParseTls(errors, *tls, label, u);
  // MQTT's CONNECT carries the keepalive as 16-bit whole seconds.
  if (sec.Duration("keepalive", &v, kSecondUs, 65535 * kSecondUs, "the MQTT limit")) {
    if (v % kSecondUs != 0) {
      sec.ErrorAtKey("keepalive", "\"keepalive\" must be whole seconds (MQTT sends seconds)");
    }
    u->keepalive_s = static_cast<int>(v / kSecondUs);
    if (u->client == MqttClient::kMosquitto && u->keepalive_s < 5) {
      // mosquitto_connect refuses it ("Invalid function arguments"): the
      // uplink would never connect.
      sec.ErrorAtKey("keepalive", "\"keepalive\" must be at least 5s with client = "
                                  "\"mosquitto\" (libmosquitto refuses less; paho takes 1s)");
    }
  }
  sec.Duration("connect_timeout", &u->connect_timeout_us, 100000, kHourUs);
  sec.Duration("reconnect_min", &u->reconnect_min_us, 10000, kHourUs);
  sec.Duration("reconnect_max", &u->reconnect_max_us, 10000, kHourUs);
  if (u->reconnect_max_us < u->reconnect_min_us) {
    sec.ErrorAtKey("reconnect_max", "\"reconnect_max\" must not be below \"reconnect_min\"");
  }
  sec.Finish();
}

// Applies `fn` to every table of an array of tables `[[key]]`.
template <typename Fn>
void ForEachTable(Errors& errors, const toml::node* n, const std::string& key, Fn fn) {
  if (!n) return;
  const toml::array* arr = n->as_array();
  if (!arr || !arr->is_array_of_tables()) {
    errors.Add(n->source(), "\"" + key + "\" must be written as [[" + key + "]] tables");
    return;
  }
  size_t i = 0;
  for (const toml::node& e : *arr) fn(*e.as_table(), i++);
}

}  // namespace

StatusOr<Config> ParseConfig(const std::string& text, const std::string& path) {
  Config cfg;
  cfg.path = path;
  auto doc = ParseToml(text, path);
  if (!doc.ok()) return doc.status();
  cfg.document = std::make_shared<toml::table>(std::move(*doc));
  Errors errors(path);
  const toml::table& root = *cfg.document;
  Section top(errors, root, "config");

  const toml::table* agent = top.Table("agent");
  if (agent) ParseAgent(errors, *agent, &cfg.agent);
  else errors.AddNoPos("missing [agent] table (agent.id is required)");
  if (const toml::table* b = top.Table("buffer")) ParseBuffer(errors, *b, &cfg.buffer);
  std::set<std::string> sensor_names;
  ForEachTable(errors, top.Get("sensor"), "sensor", [&](const toml::table& t, size_t i) {
    cfg.sensors.emplace_back();
    ParseSensor(errors, t, i, &sensor_names, &cfg.sensors.back());
  });
  if (const toml::table* r = top.Table("rules")) ParseRules(errors, *r, &cfg.rules);
  std::set<std::string> upstream_names;
  ForEachTable(errors, top.Get("upstream"), "upstream", [&](const toml::table& t, size_t i) {
    cfg.upstreams.emplace_back();
    ParseUpstream(errors, t, i, cfg.agent, &upstream_names, &cfg.upstreams.back());
  });
  top.Finish();
  if (!errors.empty()) return InvalidArgument(errors.Joined());
  return cfg;
}

StatusOr<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(path + ": cannot read the config file: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return InvalidArgument(path + ": error reading the config file");
  return ParseConfig(ss.str(), path);
}

}  // namespace sluice
