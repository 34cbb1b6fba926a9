#include "drivers/mqtt.h"

#include <algorithm>
#include <climits>
#include <utility>

#include "common/backoff.h"
#include "common/json_parse.h"
#include "common/mqtt_text.h"
#include "common/redact_url.h"
#include "drivers/param_choice.h"
#include "drivers/value_text.h"

namespace sluice {
namespace {

constexpr int kLoopTimeoutMs = 100;
constexpr int64_t kSubmitTimeoutUs = 250 * 1000;
constexpr int64_t kLogIntervalUs = 10 * 1000000ll;
constexpr size_t kMaxPayload = 64 * 1024;

const char* JsonTypeName(const JsonValue& v) {
  switch (v.type()) {
    case JsonValue::Type::kNull:
      return "null";
    case JsonValue::Type::kBool:
      return "a boolean";
    case JsonValue::Type::kNumber:
      return "a number";
    case JsonValue::Type::kString:
      return "a string";
    case JsonValue::Type::kArray:
      return "an array";
    case JsonValue::Type::kObject:
      return "an object";
  }
  return "?";
}

bool KeyChar(char c) { return c != '.' && c != '[' && c != ']' && c != '\'' && c != '"'; }

// The broker url of an mqtt sensor: plain MQTT only, errors in the words
// of the sensor's params.
Status ParseSourceUrl(const std::string& url, BrokerAddress* broker) {
  const std::string shown = "\"" + RedactUrl(url) + "\"";
  switch (ParseBrokerUrl(url, broker)) {
    case BrokerUrlError::kNone:
      if (broker->tls) {
        return InvalidArgument("must be mqtt://HOST[:PORT] (TLS is not supported by this driver)");
      }
      return Status::Ok();
    case BrokerUrlError::kCredentials:
      return InvalidArgument("must not hold credentials (" + shown +
                             "): the user name belongs in param \"username\" and the password "
                             "in the file named by param \"password_file\"");
    case BrokerUrlError::kScheme:
      return InvalidArgument("must be mqtt://HOST[:PORT] or tcp://HOST[:PORT], not " + shown);
    case BrokerUrlError::kHost:
      return InvalidArgument("needs a host name or address (no path, no user@): " + shown);
    case BrokerUrlError::kPortSyntax:
    case BrokerUrlError::kPortRange:
      return InvalidArgument("has a bad port in " + shown + " (1 .. 65535)");
  }
  return InvalidArgument("is not a broker url: " + shown);
}

}  // namespace

bool ValidJsonPath(const std::string& path) {
  size_t i = 0;
  if (!path.empty() && path[0] == '$') i = 1;
  bool first = true;
  while (i < path.size()) {
    const char c = path[i];
    if (c == '.' || (first && i == 0)) {
      if (c == '.') ++i;
      size_t start = i;
      while (i < path.size() && KeyChar(path[i])) ++i;
      if (i == start) return false;
    } else if (c == '[') {
      ++i;
      if (i < path.size() && (path[i] == '\'' || path[i] == '"')) {
        const char quote = path[i++];
        size_t close = path.find(quote, i);
        if (close == std::string::npos) return false;
        i = close + 1;
      } else {
        size_t start = i;
        while (i < path.size() && path[i] >= '0' && path[i] <= '9') ++i;
        if (i == start) return false;
      }
      if (i >= path.size() || path[i] != ']') return false;
      ++i;
    } else {
      return false;
    }
    first = false;
  }
  return true;
}

StatusOr<double> ParseMqttPayload(std::string_view payload, const std::string& json_path) {
  if (payload.size() > kMaxPayload) {
    return InvalidArgument("payload of " + std::to_string(payload.size()) + " bytes is over " +
                           std::to_string(kMaxPayload));
  }
  if (json_path.empty()) return ParsePlainNumber(payload);
  JsonLimits limits;
  limits.max_bytes = kMaxPayload;
  StatusOr<JsonValue> doc = ParseJson(payload, limits);
  if (!doc.ok()) return InvalidArgument("not JSON: " + doc.status().message());
  const JsonValue* v = doc->AtPath(json_path);
  if (v == nullptr) return InvalidArgument("no " + json_path + " in the payload");
  if (v->is_number()) return v->AsNumber();
  if (v->is_bool()) return v->AsBool() ? 1.0 : 0.0;
  if (v->is_string()) {
    StatusOr<double> n = ParsePlainNumber(v->AsString());
    if (n.ok()) return n;
    return InvalidArgument(json_path + " is a string, " + n.status().message());
  }
  return InvalidArgument(json_path + " is " + JsonTypeName(*v) + ", not a number");
}

MqttDriver::MqttDriver(SensorSpec spec, MqttSourceOptions options, Clock& clock)
    : spec_(std::move(spec)),
      options_(std::move(options)),
      clock_(clock),
      bad_log_(LogLevel::kWarn, "mqtt", kLogIntervalUs, clock),
      conn_log_(LogLevel::kWarn, "mqtt", kLogIntervalUs, clock),
      up_log_(LogLevel::kInfo, "mqtt", kLogIntervalUs, clock),
      backoff_(options_.reconnect_min_us, options_.reconnect_max_us, clock) {}

MqttDriver::~MqttDriver() { Stop(); }

MqttSourceStats MqttDriver::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

DriverStatus MqttDriver::Report() const {
  // A sensor beside the polled ones: failing while not subscribed; reads are
  // messages, errors bad payloads.
  MqttSourceStats m = stats();
  DriverStatus r;
  r.role = DriverStatus::Role::kSensor;
  SensorStatus& st = r.sensor;
  st.failing = !m.connected || !m.subscribed || m.consecutive_bad > 0;
  st.consecutive_failures = static_cast<int>(std::min<uint64_t>(m.consecutive_bad, INT32_MAX));
  st.last_error_ts_us = m.last_bad_ts_us;
  st.last_sample_ts_us = m.last_message_ts_us;
  st.has_value = m.has_value;
  st.last_value = m.last_value;
  st.last_ts_us = m.last_ts_us;
  st.reads = m.messages;
  st.errors = m.bad_payloads;
  st.submitted = m.readings;
  st.suppressed = m.suppressed;
  st.dropped = m.dropped;
  st.last_error = m.last_error;
  return r;
}

Status MqttDriver::Start(ReadingSink& sink) {
  if (thread_.joinable()) return Status::Ok();
  if (!options_.password_file.empty()) {
    StatusOr<std::string> pw = ReadPasswordFile(options_.password_file);
    if (!pw.ok()) return InvalidArgument("sensor \"" + spec_.name + "\": " + pw.status().message());
    password_ = std::move(*pw);
  }
  sink_ = &sink;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void MqttDriver::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    stop_ = true;
  }
  sleep_cv_.notify_all();
  thread_.join();
}

bool MqttDriver::Sleep(int64_t us) {
  std::unique_lock<std::mutex> lock(sleep_mu_);
  sleep_cv_.wait_for(lock, std::chrono::microseconds(us), [this] { return stop_.load(); });
  return !stop_;
}

void MqttDriver::SetError(const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.last_error = error;
  }
  conn_log_.Log("sensor \"" + spec_.name + "\": " + options_.broker.host + ":" +
                std::to_string(options_.broker.port) + ": " + error);
}

void MqttDriver::Run() {
  MosquittoOptions o;
  o.broker = options_.broker;
  o.client_id = options_.client_id;
  o.username = options_.username;
  o.password = password_;
  o.keepalive_s = options_.keepalive_s;
  o.threaded = false;  // every call is on this thread
  StatusOr<std::unique_ptr<MosquittoClient>> client = MosquittoClient::Create(o, this);
  if (!client.ok()) {
    SetError(client.status().message());
    return;
  }
  client_ = std::move(*client);
  while (!stop_) {
    // Connects the first time, reconnects the same client after.
    Status st = client_->Connect();
    if (st.ok()) st = client_->RunLoop(stop_, kLoopTimeoutMs);
    if (stop_) break;
    bool was_connected = false;
    std::string refused;
    {
      std::lock_guard<std::mutex> lock(mu_);
      was_connected = stats_.connected;
      stats_.connected = false;
      stats_.subscribed = false;
      refused = stats_.last_error.rfind("refused", 0) == 0 ? stats_.last_error : "";
    }
    if (refused.empty()) {
      SetError((was_connected ? "connection lost: " : "cannot connect: ") + st.message());
    }
    // Starts over only if the connection stayed up kStableConnectionUs.
    if (!Sleep(backoff_.NextDelayUs())) break;
  }
  client_->Disconnect();
  client_.reset();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.connected = false;
  stats_.subscribed = false;
}

void MqttDriver::OnConnect(int rc) {
  if (rc != 0) {
    SetError(ConnackReason(rc));
    client_->Disconnect();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.connected = true;
    ++stats_.connects;
    stats_.last_error.clear();
  }
  backoff_.Connected();
  up_log_.Log("sensor \"" + spec_.name + "\": connected to " + options_.broker.host + ":" +
                      std::to_string(options_.broker.port) + ", subscribing to " + options_.topic);
  Status st = client_->Subscribe(options_.topic, options_.qos, nullptr);
  if (!st.ok()) SetError("subscribe: " + st.message());
}

void MqttDriver::OnSubscribe(int, int granted_qos) {
  if (granted_qos > 2) {
    SetError("refused by the broker: subscription to " + options_.topic);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.subscribed = true;
}

void MqttDriver::OnMessage(const MosquittoMessage& msg) {
  const int64_t wall = clock_.NowWallUs();
  const int64_t mono = clock_.NowMonotonicUs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.messages;
    stats_.last_message_ts_us = wall;
  }
  StatusOr<double> raw = ParseMqttPayload(msg.payload, options_.json_path);
  if (!raw.ok()) {
    std::string what = "bad payload on " + std::string(msg.topic) + ": " +
                       raw.status().message();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.bad_payloads;
      ++stats_.consecutive_bad;
      stats_.last_bad_ts_us = wall;
      stats_.last_error = what;
    }
    bad_log_.Log("sensor \"" + spec_.name + "\": " + what);
    return;
  }
  const double value = *raw * spec_.scale + spec_.offset;
  const bool want = deadband_.Want(spec_, value, mono);
  bool accepted = false;
  if (want) {
    Reading r;
    r.sensor = spec_.name;
    r.ts_us = wall;
    r.value = value;
    r.unit = spec_.unit;
    r.quality = Quality::kGood;
    accepted = sink_->Submit(std::move(r), kSubmitTimeoutUs).ok();
    if (accepted) {
      deadband_.Submitted(value, mono);
    } else {
      sink_->CountDropped(1);
      bad_log_.Log("sensor \"" + spec_.name + "\": reading dropped (pipeline full)");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.consecutive_bad = 0;
  stats_.has_value = true;
  stats_.last_value = value;
  stats_.last_ts_us = wall;
  if (!want) ++stats_.suppressed;
  if (want && accepted) ++stats_.readings;
  if (want && !accepted) ++stats_.dropped;
}

StatusOr<std::unique_ptr<Driver>> CreateMqttDriver(const SensorSpec& spec, Params& params,
                                                   DriverContext& ctx) {
  MqttSourceOptions o;
  StatusOr<std::string> url = params.RequiredString("url");
  if (!url.ok()) return url.status();
  Status st = ParseSourceUrl(*url, &o.broker);
  if (!st.ok()) return params.ErrorAt("url", st.message());
  StatusOr<std::string> topic = params.RequiredString("topic");
  if (!topic.ok()) return topic.status();
  if (!MosquittoClient::ValidTopicFilter(*topic)) {
    return params.ErrorAt("topic",
                          "must be a valid topic filter ('+' and '#' only as whole "
                          "levels, '#' last): \"" +
                              *topic + "\"");
  }
  o.topic = *topic;
  StatusOr<std::string> path = params.String("json_path", "");
  if (!path.ok()) return path.status();
  if (params.Has("json_path") && (path->empty() || !ValidJsonPath(*path))) {
    return params.ErrorAt("json_path",
                          "must be a simple path such as \"$.sensors.temp\" or "
                          "\"$.values[0]\", not \"" +
                              *path + "\"");
  }
  o.json_path = *path;
  StatusOr<int64_t> qos = ParamIntRange(params, "qos", 0, 0, 2);
  if (!qos.ok()) return qos.status();
  o.qos = static_cast<int>(*qos);
  StatusOr<std::string> user = params.String("username", "");
  if (!user.ok()) return user.status();
  o.username = *user;
  StatusOr<std::string> pw = params.String("password_file", "");
  if (!pw.ok()) return pw.status();
  if (params.Has("password_file") && (pw->empty() || o.username.empty())) {
    return params.ErrorAt("password_file", "needs a path and param \"username\"");
  }
  if (params.Has("password_file")) {
    // Checked here too, so that --check finds a missing or wrong file.
    StatusOr<std::string> secret = ReadPasswordFile(*pw);
    if (!secret.ok()) return params.ErrorAt("password_file", secret.status().message());
  }
  o.password_file = *pw;
  StatusOr<std::string> id = params.String("client_id", "");
  if (!id.ok()) return id.status();
  if (params.Has("client_id") && (id->empty() || id->size() > 65535)) {
    return params.ErrorAt("client_id", "must be 1 .. 65535 bytes");
  }
  o.client_id = *id;
  return std::unique_ptr<Driver>(new MqttDriver(spec, std::move(o), ctx.clock));
}

}  // namespace sluice
