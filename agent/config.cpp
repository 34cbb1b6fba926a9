#include "agent/config.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "common/log.h"
#include "common/toml_parse.h"
#include "common/units.h"

namespace sluice {
namespace {

std::string Where(const std::string& file, const toml::source_region& src) {
  std::string out = file;
  if (src.begin.line > 0) {
    out += ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
  }
  return out;
}

// Collects every error of one file, in order, each "FILE:LINE:COL: ...".
class Errors {
 public:
  explicit Errors(std::string file) : file_(std::move(file)) {}
  void Add(const toml::source_region& src, const std::string& what) {
    lines_.push_back(Where(file_, src) + ": " + what);
  }
  void AddNoPos(const std::string& what) { lines_.push_back(file_ + ": " + what); }
  bool empty() const { return lines_.empty(); }
  std::string Joined() const {
    std::string out;
    for (const auto& l : lines_) {
      if (!out.empty()) out += '\n';
      out += l;
    }
    return out;
  }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<std::string> lines_;
};

const char* TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    default: return "a date/time";
  }
}

// Typed, strict access to one TOML table. Every key read is remembered;
// Finish() reports the keys nobody read as unknown.
class Section {
 public:
  Section(Errors& errors, const toml::table& table, std::string name)
      : errors_(errors), table_(table), name_(std::move(name)) {}

  const toml::node* Get(const std::string& key) {
    known_.insert(key);
    return table_.get(key);
  }

  bool String(const std::string& key, std::string* out, bool required = false) {
    const toml::node* n = Get(key);
    if (!n) {
      if (required) errors_.Add(table_.source(), name_ + ": missing required key \"" + key + "\"");
      return false;
    }
    if (auto v = n->value<std::string>(); v && n->is_string()) {
      *out = *v;
      return true;
    }
    Wrong(*n, key, "a string");
    return false;
  }

  bool Integer(const std::string& key, int64_t* out, int64_t min, int64_t max) {
    const toml::node* n = Get(key);
    if (!n) return false;
    if (!n->is_integer()) {
      Wrong(*n, key, "an integer");
      return false;
    }
    int64_t v = *n->value<int64_t>();
    if (v < min || v > max) {
      errors_.Add(n->source(), name_ + ": \"" + key + "\" must be between " +
                                   std::to_string(min) + " and " + std::to_string(max) +
                                   ", not " + std::to_string(v));
      return false;
    }
    *out = v;
    return true;
  }

  bool Bool(const std::string& key, bool* out) {
    const toml::node* n = Get(key);
    if (!n) return false;
    if (!n->is_boolean()) {
      Wrong(*n, key, "a boolean (true or false)");
      return false;
    }
    *out = *n->value<bool>();
    return true;
  }

  bool Duration(const std::string& key, int64_t* out, int64_t min_us = 0) {
    const toml::node* n = Get(key);
    if (!n) return false;
    if (!n->is_string()) {
      Wrong(*n, key, "a duration string such as \"5s\"");
      return false;
    }
    auto d = ParseDuration(*n->value<std::string>());
    if (!d.ok()) {
      errors_.Add(n->source(), name_ + ": \"" + key + "\": " + d.status().message());
      return false;
    }
    if (*d < min_us) {
      errors_.Add(n->source(), name_ + ": \"" + key + "\" must be at least " +
                                   FormatDuration(min_us));
      return false;
    }
    *out = *d;
    return true;
  }

  // A size: a string with a unit ("256MiB") or an integer of bytes.
  bool Size(const std::string& key, uint64_t* out) {
    const toml::node* n = Get(key);
    if (!n) return false;
    if (n->is_integer() && *n->value<int64_t>() > 0) {
      *out = static_cast<uint64_t>(*n->value<int64_t>());
      return true;
    }
    if (!n->is_string()) {
      Wrong(*n, key, "a size such as \"256MiB\"");
      return false;
    }
    auto s = ParseSize(*n->value<std::string>());
    if (!s.ok() || *s == 0) {
      errors_.Add(n->source(), name_ + ": \"" + key + "\": " +
                                   (s.ok() ? std::string("must be positive") : s.status().message()));
      return false;
    }
    *out = *s;
    return true;
  }

  bool StringList(const std::string& key, std::vector<std::string>* out) {
    const toml::node* n = Get(key);
    if (!n) return false;
    const toml::array* a = n->as_array();
    if (!a) {
      Wrong(*n, key, "an array of strings");
      return false;
    }
    out->clear();
    for (const toml::node& e : *a) {
      if (!e.is_string()) {
        errors_.Add(e.source(), name_ + ": \"" + key + "\" must hold only strings, not " +
                                    TypeName(e));
        return false;
      }
      out->push_back(*e.value<std::string>());
    }
    return true;
  }

  const toml::table* Table(const std::string& key) {
    const toml::node* n = Get(key);
    if (!n) return nullptr;
    if (!n->is_table()) {
      Wrong(*n, key, "a table");
      return nullptr;
    }
    return n->as_table();
  }

  // Reports every key that no getter asked for.
  void Finish() {
    for (auto&& [k, v] : table_) {
      std::string key(k.str());
      if (!known_.count(key)) {
        errors_.Add(k.source(), name_ + ": unknown key \"" + key + "\"");
      }
    }
  }

  void Error(const toml::node& n, const std::string& what) {
    errors_.Add(n.source(), name_ + ": " + what);
  }
  void ErrorAtKey(const std::string& key, const std::string& what) {
    const toml::node* n = table_.get(key);
    errors_.Add(n ? n->source() : table_.source(), name_ + ": " + what);
  }

 private:
  void Wrong(const toml::node& n, const std::string& key, const char* expected) {
    errors_.Add(n.source(), name_ + ": \"" + key + "\" must be " + expected + ", not " +
                                TypeName(n));
  }

  Errors& errors_;
  const toml::table& table_;
  std::string name_;
  std::set<std::string> known_;
};

bool ValidName(const std::string& s, size_t max) {
  static const std::regex re("[A-Za-z0-9._-]+");
  return !s.empty() && s.size() <= max && std::regex_match(s, re);
}

void CheckTemplate(Section& sec, const std::string& key, const std::string& value,
                   const std::set<std::string>& allowed) {
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
  sec.String("data_dir", &a->data_dir);
  if (sec.String("control_socket", &a->control_socket)) {
    if (a->control_socket.empty() || a->control_socket.size() >= 108) {
      sec.ErrorAtKey("control_socket", "\"control_socket\" must be a path of 1..107 bytes");
    }
  }
  if (sec.String("metrics_listen", &a->metrics_listen) && !a->metrics_listen.empty()) {
    std::string why = ParseListen(a->metrics_listen, a);
    if (!why.empty()) sec.ErrorAtKey("metrics_listen", "\"metrics_listen\" " + why);
  }
  sec.Duration("shutdown_grace", &a->shutdown_grace_us);
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
  sec.Size("max_bytes", &b->max_bytes);
  if (b->max_bytes < (64u << 10)) sec.ErrorAtKey("max_bytes", "\"max_bytes\" must be at least 64KiB");
  std::string durability;
  if (sec.String("durability", &durability)) {
    if (durability == "off") b->durability = Durability::kOff;
    else if (durability == "normal") b->durability = Durability::kNormal;
    else if (durability == "full") b->durability = Durability::kFull;
    else sec.ErrorAtKey("durability", "\"durability\" must be off, normal or full, not \"" + durability + "\"");
  }
  sec.Duration("commit_interval", &b->commit_interval_us);
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
  sec.Duration("interval", &s->spec.interval_us, 1000);
  sec.String("unit", &s->spec.unit);
  s->params = sec.Table("params");
  sec.Finish();
}

void ParseRules(Errors& errors, const toml::table& t, RulesConfig* r) {
  Section sec(errors, t, "[rules]");
  sec.StringList("files", &r->files);
  sec.Duration("late_tolerance", &r->late_tolerance_us);
  sec.Duration("max_future", &r->max_future_us);
  sec.Finish();
}

void ParseTls(Errors& errors, const toml::table& t, const std::string& owner, UpstreamConfig* u) {
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
                   std::set<std::string>* names, UpstreamConfig* u) {
  std::string label = "[[upstream]] #" + std::to_string(index + 1);
  Section sec(errors, t, label);
  if (!sec.String("name", &u->name)) u->name = index == 0 ? "upstream" : "upstream-" + std::to_string(index + 1);
  if (!ValidName(u->name, 64)) {
    sec.ErrorAtKey("name", "\"name\" must match [A-Za-z0-9._-]{1,64}, not \"" + u->name + "\"");
  } else if (!names->insert(u->name).second) {
    sec.ErrorAtKey("name", "duplicate upstream name \"" + u->name + "\"");
  }
  if (sec.String("url", &u->url, true)) {
    static const std::regex re(R"(^(mqtt|tcp|mqtts|ssl)://([^/:]+|\[[0-9a-fA-F:]+\])(:([0-9]{1,5}))?/?$)");
    std::smatch m;
    if (!std::regex_match(u->url, m, re)) {
      sec.ErrorAtKey("url", "\"url\" must look like mqtt://HOST:PORT or mqtts://HOST:PORT, not \"" + u->url + "\"");
    } else {
      u->tls = m[1] == "mqtts" || m[1] == "ssl";
      if (m[4].matched && (std::stoi(m[4]) == 0 || std::stoi(m[4]) > 65535)) {
        sec.ErrorAtKey("url", "\"url\" has a port outside 1..65535");
      }
    }
  }
  if (!sec.String("client_id", &u->client_id)) u->client_id = agent.id;
  std::string client;
  if (sec.String("client", &client)) {
    if (client == "mosquitto") u->client = MqttClient::kMosquitto;
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
  sec.String("username", &u->username);
  sec.String("password_file", &u->password_file);
  if (const toml::table* tls = sec.Table("tls")) ParseTls(errors, *tls, label, u);
  if (sec.Duration("keepalive", &v, 1000000)) u->keepalive_s = static_cast<int>(v / 1000000);
  sec.Duration("connect_timeout", &u->connect_timeout_us, 100000);
  sec.Duration("reconnect_min", &u->reconnect_min_us, 10000);
  sec.Duration("reconnect_max", &u->reconnect_max_us, 10000);
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
