// libmosquitto 2.0, driven by the caller's own network thread
// (mosquitto_loop, not mosquitto_loop_start/loop_forever: those reconnect by
// themselves and would send what was queued before a loss on the new
// connection). errno is read right after each failing libmosquitto call, on
// the same thread, before anything else can change it.
#include "common/mosquitto_client.h"

#include <mosquitto.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <utility>

#include "common/mqtt_text.h"

namespace sluice {
namespace {

constexpr size_t kMaxPayload = 268435455;  // MQTT's remaining-length limit
constexpr size_t kMaxErrorLog = 512;
constexpr int64_t kInboundSampleNs = 50 * 1000000ll;

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void InitLibraryOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

// libmosquitto's text for rc; for MOSQ_ERR_ERRNO the system's for `err`,
// which the caller read right after the failing call on the same thread
// (errno 0: lost on the way; never printed as "Success").
std::string Reason(int rc, int err) {
  if (rc == MOSQ_ERR_ERRNO) return SystemErrorText(err);
  // libmosquitto 2.0.11 has no text for its own keepalive timeout.
  if (rc == MOSQ_ERR_KEEPALIVE) return "no PINGRESP from the broker within keepalive";
  return mosquitto_strerror(rc);
}

StatusCode CodeOf(int rc) {
  return (rc == MOSQ_ERR_INVAL || rc == MOSQ_ERR_PAYLOAD_SIZE || rc == MOSQ_ERR_MALFORMED_UTF8)
             ? StatusCode::kInvalidArgument
             : StatusCode::kUnavailable;
}

}  // namespace

StatusOr<std::unique_ptr<MosquittoClient>> MosquittoClient::Create(
    const MosquittoOptions& options, MosquittoListener* listener) {
  if (listener == nullptr) return InvalidArgument("mqtt client: no listener");
  if (options.broker.host.empty()) return InvalidArgument("mqtt client: no broker address");
  InitLibraryOnce();
  std::unique_ptr<MosquittoClient> client(new MosquittoClient(options, listener));
  client->mosq_ = mosquitto_new(options.client_id.empty() ? nullptr : options.client_id.c_str(),
                                options.clean_session, client.get());
  const int err = errno;
  if (client->mosq_ == nullptr) {
    return Unavailable(err == EINVAL ? "mqtt client: a client id is needed without clean session"
                                       : "cannot create an MQTT client (out of memory)");
  }
  SLUICE_RETURN_IF_ERROR(client->Configure());
  return client;
}

MosquittoClient::MosquittoClient(const MosquittoOptions& options, MosquittoListener* listener)
    : options_(options), listener_(listener) {}

MosquittoClient::~MosquittoClient() {
  if (mosq_ != nullptr) mosquitto_destroy(mosq_);
}

Status MosquittoClient::Configure() {
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  if (options_.threaded) mosquitto_threaded_set(mosq_, true);
  if (options_.send_maximum > 0) {
    mosquitto_int_option(mosq_, MOSQ_OPT_SEND_MAXIMUM, options_.send_maximum);
  }
  mosquitto_connect_callback_set(mosq_, &OnConnectThunk);
  mosquitto_disconnect_callback_set(mosq_, &OnDisconnectThunk);
  mosquitto_publish_callback_set(mosq_, &OnPublishThunk);
  mosquitto_subscribe_callback_set(mosq_, &OnSubscribeThunk);
  mosquitto_message_callback_set(mosq_, &OnMessageThunk);
  mosquitto_log_callback_set(mosq_, &OnLogThunk);
  int rc;
  if (!options_.username.empty() || !options_.password.empty()) {
    rc = mosquitto_username_pw_set(
        mosq_, options_.username.c_str(),
        options_.password.empty() ? nullptr : options_.password.c_str());
    if (rc != MOSQ_ERR_SUCCESS) return InvalidArgument("username/password: " + Reason(rc, errno));
  }
  const MosquittoWill& will = options_.will;
  if (!will.topic.empty()) {
    rc = mosquitto_will_set(mosq_, will.topic.c_str(), static_cast<int>(will.payload.size()),
                            will.payload.data(), will.qos, will.retain);
    if (rc != MOSQ_ERR_SUCCESS) return InvalidArgument("will: " + Reason(rc, errno));
  }
  if (options_.broker.tls) return ConfigureTls();
  return Status::Ok();
}

Status MosquittoClient::ConfigureTls() {
  const MosquittoTls& tls = options_.tls;
  const char* ca = tls.ca_file.empty() ? nullptr : tls.ca_file.c_str();
  // No ca_file: the system's trust store (mosquitto_tls_set wants a CA
  // file or directory, so name the system's as well).
  const char* ca_path = ca == nullptr ? "/etc/ssl/certs" : nullptr;
  if (ca == nullptr) mosquitto_int_option(mosq_, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
  const char* cert = tls.cert_file.empty() ? nullptr : tls.cert_file.c_str();
  const char* key = tls.key_file.empty() ? nullptr : tls.key_file.c_str();
  if ((cert == nullptr) != (key == nullptr)) {
    return InvalidArgument("tls: cert_file and key_file go together");
  }
  int rc = mosquitto_tls_set(mosq_, ca, ca_path, cert, key, nullptr);
  if (rc != MOSQ_ERR_SUCCESS) {
    const std::string why = Reason(rc, errno);
    std::lock_guard<std::mutex> lock(mu_);
    return InvalidArgument("tls: " + why + (errors_.empty() ? "" : " (" + errors_ + ")"));
  }
  if (!tls.verify) {
    // Neither the chain (SSL_VERIFY_NONE = 0) nor the host name.
    rc = mosquitto_tls_opts_set(mosq_, 0, nullptr, nullptr);
    if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_insecure_set(mosq_, true);
    if (rc != MOSQ_ERR_SUCCESS) return InvalidArgument("tls: " + Reason(rc, errno));
  }
  return Status::Ok();
}

Status MosquittoClient::Connect() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    phase_ = Phase::kConnecting;
    disconnect_rc_ = 0;
    disconnect_errno_ = 0;
    reason_.clear();
    errors_.clear();
  }
  inbound_at_ns_ = 0;
  sampled_at_ns_ = 0;
  const int rc = connect_called_
                     ? mosquitto_reconnect_async(mosq_)
                     : mosquitto_connect_async(mosq_, options_.broker.host.c_str(),
                                               options_.broker.port, options_.keepalive_s);
  const int err = errno;
  connect_called_ = true;
  if (rc == MOSQ_ERR_SUCCESS) return Status::Ok();
  // Also TLS: on loopback the handshake may fail right here.
  std::lock_guard<std::mutex> lock(mu_);
  phase_ = Phase::kEnded;
  reason_ = Reason(rc, err);
  return Unavailable(LastErrorLocked());
}

Status MosquittoClient::RunLoop(const std::atomic<bool>& stop, int poll_ms) {
  while (!stop) {
    const int rc = mosquitto_loop(mosq_, poll_ms, 1);
    if (rc == MOSQ_ERR_SUCCESS) {
      SampleInbound();
      continue;
    }
    const int err = errno;
    // An error here has already closed the socket and called on_disconnect
    // (for losses after CONNACK) - or the connection never came up (TLS,
    // refused, connect failure).
    std::lock_guard<std::mutex> lock(mu_);
    if (rc != MOSQ_ERR_NO_CONN) NoteFailureLocked(rc, err);
    if (disconnect_rc_ == 0) disconnect_rc_ = rc == MOSQ_ERR_NO_CONN ? MOSQ_ERR_CONN_LOST : rc;
    phase_ = Phase::kEnded;
    return Unavailable(LastErrorLocked());
  }
  return Status::Ok();
}

Status MosquittoClient::Publish(const std::string& topic, const void* payload, size_t size,
                                int qos, bool retain, int* mid) {
  if (size > kMaxPayload) {
    return InvalidArgument("payload of " + std::to_string(size) + " B too large");
  }
  const int rc = mosquitto_publish(mosq_, mid, topic.c_str(), static_cast<int>(size), payload,
                                   qos, retain);
  const int err = errno;
  if (rc != MOSQ_ERR_SUCCESS) return Status(CodeOf(rc), Reason(rc, err));
  return Status::Ok();
}

Status MosquittoClient::Subscribe(const std::string& topic_filter, int qos, int* mid) {
  const int rc = mosquitto_subscribe(mosq_, mid, topic_filter.c_str(), qos);
  const int err = errno;
  if (rc != MOSQ_ERR_SUCCESS) return Status(CodeOf(rc), Reason(rc, err));
  return Status::Ok();
}

void MosquittoClient::Disconnect() { mosquitto_disconnect(mosq_); }

std::string MosquittoClient::LastError() const {
  std::lock_guard<std::mutex> lock(mu_);
  return LastErrorLocked();
}

// libmosquitto keeps the time of the last packet in to itself (and in whole
// seconds); the socket's TCP_INFO tells the same to the millisecond, for
// every packet including PINGRESP, and for a packet that stopped halfway
// the time its last bytes came.
void MosquittoClient::SampleInbound() {
  const int64_t now = SteadyNs();
  if (now - sampled_at_ns_ < kInboundSampleNs) return;
  sampled_at_ns_ = now;
  const int fd = mosquitto_socket(mosq_);
  if (fd < 0) return;
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
      len < offsetof(tcp_info, tcpi_last_data_recv) + sizeof(info.tcpi_last_data_recv)) {
    return;
  }
  inbound_at_ns_ = now - static_cast<int64_t>(info.tcpi_last_data_recv) * 1000000;
}

int64_t MosquittoClient::InboundSilenceUs() const {
  const int64_t at = inbound_at_ns_.load();
  if (at == 0) return -1;
  return std::max<int64_t>(0, (SteadyNs() - at) / 1000);
}

std::string MosquittoClient::LibraryErrors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

bool MosquittoClient::ValidTopicFilter(const std::string& filter) {
  return !filter.empty() && mosquitto_sub_topic_check(filter.c_str()) == MOSQ_ERR_SUCCESS;
}

std::string MosquittoClient::LastErrorLocked() const {
  if (phase_ != Phase::kEnded && reason_.empty()) return "";
  std::string s = reason_.empty() ? Reason(disconnect_rc_, disconnect_errno_) : reason_;
  if (!errors_.empty()) s += " (" + errors_ + ")";
  return s;
}

// Records why the connection failed or ended (the first reason wins).
// `err`: errno of the network thread right after libmosquitto failed.
void MosquittoClient::NoteFailureLocked(int rc, int err) {
  if (!reason_.empty()) return;
  if (rc == MOSQ_ERR_ERRNO && err != 0) disconnect_errno_ = err;
  if (rc != MOSQ_ERR_ERRNO) {
    reason_ = Reason(rc, err);
  } else if (err == 0) {
    // libmosquitto said "see errno" but errno was clobbered on the way:
    // leave the reason to a later report (the loop's end) or the fallback.
  } else if (err != EPROTO || !options_.broker.tls) {
    reason_ = std::strerror(err);
  } else if (!errors_.empty() || phase_ != Phase::kConnecting) {
    // libmosquitto sets EPROTO for a TLS failure; OpenSSL's reason, if it
    // had one, came through the log callback (errors_).
    reason_ = "TLS error";
  } else {
    // The socket failed under TLS with nothing in OpenSSL's queue: the
    // broker closed it after our side of the handshake, so its alert was
    // never read. With TLS 1.3 that is how a broker rejects a client
    // certificate.
    reason_ = "TLS connection closed by the broker before CONNACK, no TLS alert "
              "received (a broker rejecting the client certificate does this)";
  }
}

// libmosquitto callbacks (network thread). The client's lock is never held
// while the listener runs.
void MosquittoClient::OnConnectThunk(mosquitto*, void* self, int rc) {
  auto* c = static_cast<MosquittoClient*>(self);
  {
    std::lock_guard<std::mutex> lock(c->mu_);
    if (rc == 0) {
      c->phase_ = Phase::kConnected;
    } else {
      if (c->reason_.empty()) c->reason_ = ConnackReason(rc);
      c->phase_ = Phase::kEnded;
    }
  }
  c->listener_->OnConnect(rc);
}

void MosquittoClient::OnDisconnectThunk(mosquitto*, void* self, int rc) {
  const int err = errno;  // before anything else can change it
  auto* c = static_cast<MosquittoClient*>(self);
  {
    std::lock_guard<std::mutex> lock(c->mu_);
    if (rc != 0 && c->disconnect_rc_ == 0) c->disconnect_rc_ = rc;
    if (rc != 0) c->NoteFailureLocked(rc, err);
    c->phase_ = Phase::kEnded;
  }
  c->listener_->OnDisconnect(rc);
}

void MosquittoClient::OnPublishThunk(mosquitto*, void* self, int mid) {
  static_cast<MosquittoClient*>(self)->listener_->OnPublish(mid);
}

void MosquittoClient::OnSubscribeThunk(mosquitto*, void* self, int mid, int count,
                                       const int* granted) {
  static_cast<MosquittoClient*>(self)->listener_->OnSubscribe(
      mid, count > 0 && granted != nullptr ? granted[0] : 128);
}

void MosquittoClient::OnMessageThunk(mosquitto*, void* self, const mosquitto_message* msg) {
  if (msg == nullptr) return;
  MosquittoMessage m;
  m.topic = msg->topic != nullptr ? std::string_view(msg->topic) : std::string_view("?");
  m.payload = std::string_view(static_cast<const char*>(msg->payload),
                               msg->payloadlen > 0 ? static_cast<size_t>(msg->payloadlen) : 0);
  m.qos = msg->qos;
  m.retain = msg->retain;
  static_cast<MosquittoClient*>(self)->listener_->OnMessage(m);
}

void MosquittoClient::OnLogThunk(mosquitto*, void* self, int level, const char* msg) {
  if (level != MOSQ_LOG_ERR && level != MOSQ_LOG_WARNING) return;
  auto* c = static_cast<MosquittoClient*>(self);
  std::lock_guard<std::mutex> lock(c->mu_);
  if (c->errors_.size() > kMaxErrorLog) return;
  if (!c->errors_.empty()) c->errors_ += "; ";
  c->errors_ += msg;
}

}  // namespace sluice
