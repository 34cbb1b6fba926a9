// Transport over libmosquitto (2.0). A fresh `struct mosquitto` per
// connection, driven by our own network thread (mosquitto_loop, not
// mosquitto_loop_start: loop_forever reconnects by itself after a loss and
// would send the publishes queued before it on the new connection, ahead of
// the uplink's resend). mosquitto_destroy frees whatever was still queued
// (checked under LSan by agent_reconnect_memory_test "[memory]").
//
// Threads: the caller (one uplink thread) runs Connect/Publish/Disconnect;
// the network thread runs mosquitto_loop and every libmosquitto callback.
// mosquitto_threaded_set(true) makes mosquitto_publish only queue the packet
// and wake the network thread, so Publish never blocks on the network.
#include <mosquitto.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "agent/uplink/transport.h"
#include "common/log.h"
#include "common/mqtt_text.h"

namespace sluice {
namespace {

constexpr const char* kLog = "uplink";
constexpr int kMargin = 16;         // status messages beside the window
constexpr int kLoopTimeoutMs = 100;  // network thread's poll; publishes wake it

void InitLibraryOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

class MosquittoTransport final : public Transport {
 public:
  MosquittoTransport(TransportOptions options, TransportListener* listener)
      : options_(std::move(options)),
        listener_(listener) {}

  ~MosquittoTransport() override {
    Disconnect(0);
    DestroyClient();
  }

  Status Connect(bool* resumed) override {
    // A fresh client per connection: what the old one still queued is freed
    // with it, never sent on this connection.
    if (resumed != nullptr) *resumed = false;
    DestroyClient();
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.clear();
      early_.clear();
      state_ = State::kConnecting;
      connack_rc_ = -1;
      disconnect_rc_ = 0;
      disconnect_errno_ = 0;
      loss_reason_.clear();
      loop_done_ = false;
      errors_.clear();
    }
    disconnecting_ = false;
    mosq_ = mosquitto_new(options_.client_id.c_str(), /*clean_session=*/true, this);
    if (mosq_ == nullptr) return Unavailable("mqtt client: out of memory");
    Status st = Configure();
    if (!st.ok()) {
      DestroyClient();
      return st;
    }
    int rc = mosquitto_connect_async(mosq_, options_.broker.host.c_str(), options_.broker.port,
                                     options_.keepalive_s);
    const int connect_errno = errno;
    if (rc != MOSQ_ERR_SUCCESS) {
      // Also TLS: on loopback the handshake may fail right here.
      std::string why = Reason(rc, connect_errno);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!errors_.empty()) why += " (" + errors_ + ")";
      }
      DestroyClient();
      return Unavailable("connect to " + options_.broker.ToString() + ": " + why);
    }
    stop_loop_ = false;
    try {
      loop_ = std::thread([this] { NetworkLoop(); });
    } catch (const std::system_error& e) {
      DestroyClient();
      return Unavailable(std::string("connect: cannot start the network thread: ") + e.what());
    }

    std::unique_lock<std::mutex> lock(mu_);
    const bool done = cv_.wait_for(
        lock, std::chrono::microseconds(std::max<int64_t>(1, options_.connect_timeout_us)),
        [&] { return state_ != State::kConnecting; });
    if (done && state_ == State::kConnected) return Status::Ok();
    std::string why;
    StatusCode code = StatusCode::kUnavailable;
    if (!done) {
      code = StatusCode::kTimeout;
      why = "timed out after " + std::to_string(options_.connect_timeout_us / 1000) + " ms";
    } else if (connack_rc_ > 0) {
      why = ConnackReason(connack_rc_);
    } else {
      why = loss_reason_.empty() ? Reason(disconnect_rc_, disconnect_errno_) : loss_reason_;
    }
    if (!errors_.empty()) why += " (" + errors_ + ")";
    lock.unlock();
    disconnecting_ = true;
    DestroyClient();
    return Status(code, "connect to " + options_.broker.ToString() + ": " + why);
  }

  Status Publish(const std::string& topic, const void* payload, size_t size, int qos,
                 bool retained, uint64_t tag) override {
    if (mosq_ == nullptr || !IsConnected()) return Unavailable("publish: not connected");
    if (size > size_t{268435455}) {
      return InvalidArgument("publish: payload of " + std::to_string(size) + " B too large");
    }
    int mid = 0;
    const int rc = mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(size),
                                     payload, qos, retained);
    const int err = errno;
    if (rc != MOSQ_ERR_SUCCESS) {
      const StatusCode code = (rc == MOSQ_ERR_INVAL || rc == MOSQ_ERR_PAYLOAD_SIZE ||
                               rc == MOSQ_ERR_MALFORMED_UTF8)
                                  ? StatusCode::kInvalidArgument
                                  : StatusCode::kUnavailable;
      return Status(code, "publish: " + Reason(rc, err));
    }
    // on_publish may already have run on the network thread (QoS 0 once
    // written, QoS 1 once PUBACKed): then it left the mid in early_.
    bool acked_now = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (early_.erase(mid) > 0) {
        acked_now = true;
      } else {
        pending_[mid] = tag;
      }
    }
    if (acked_now) listener_->OnPublishAcked(tag);
    return Status::Ok();
  }

  void Disconnect(int64_t timeout_us) override {
    if (mosq_ == nullptr) return;
    disconnecting_ = true;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (state_ == State::kConnected) {
        cv_.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(0, timeout_us)),
                     [&] { return pending_.empty() || state_ != State::kConnected; });
      }
    }
    // Queues DISCONNECT; the network thread writes it, closes the socket
    // and returns. Fails harmlessly when the connection is already gone.
    mosquitto_disconnect(mosq_);
    StopLoop(/*wait_for_disconnect=*/true);
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kDisconnected;
  }

  bool IsConnected() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return state_ == State::kConnected;
  }

 private:
  enum class State { kDisconnected, kConnecting, kConnected };

  Status Configure() {
    mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_threaded_set(mosq_, true);
    const int inflight = static_cast<int>(std::min<size_t>(options_.max_inflight, 65000)) + kMargin;
    mosquitto_int_option(mosq_, MOSQ_OPT_SEND_MAXIMUM, inflight);
    mosquitto_connect_callback_set(mosq_, &OnConnectThunk);
    mosquitto_disconnect_callback_set(mosq_, &OnDisconnectThunk);
    mosquitto_publish_callback_set(mosq_, &OnPublishThunk);
    mosquitto_log_callback_set(mosq_, &OnLogThunk);
    int rc;
    if (!options_.username.empty() || !options_.password.empty()) {
      rc = mosquitto_username_pw_set(
          mosq_, options_.username.c_str(),
          options_.password.empty() ? nullptr : options_.password.c_str());
      if (rc != MOSQ_ERR_SUCCESS) return InvalidArgument("username/password: " + Reason(rc, errno));
    }
    if (!options_.will_topic.empty()) {
      rc = mosquitto_will_set(mosq_, options_.will_topic.c_str(),
                              static_cast<int>(options_.will_payload.size()),
                              options_.will_payload.data(), 1, true);
      if (rc != MOSQ_ERR_SUCCESS) return InvalidArgument("will: " + Reason(rc, errno));
    }
    if (options_.tls.enabled) SLUICE_RETURN_IF_ERROR(ConfigureTls());
    return Status::Ok();
  }

  Status ConfigureTls() {
    const TlsOptions& tls = options_.tls;
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
      std::lock_guard<std::mutex> lock(mu_);
      return InvalidArgument("tls: " + Reason(rc, errno) + (errors_.empty() ? "" : " (" + errors_ + ")"));
    }
    if (!tls.verify) {
      // Neither the chain (SSL_VERIFY_NONE = 0) nor the host name.
      rc = mosquitto_tls_opts_set(mosq_, 0, nullptr, nullptr);
      if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_tls_insecure_set(mosq_, true);
      if (rc != MOSQ_ERR_SUCCESS) return InvalidArgument("tls: " + Reason(rc, errno));
    }
    return Status::Ok();
  }

  // Network thread: runs until the connection ends or StopLoop().
  void NetworkLoop() {
    while (!stop_loop_) {
      const int rc = mosquitto_loop(mosq_, kLoopTimeoutMs, 1);
      if (rc == MOSQ_ERR_SUCCESS) continue;
      // An error here has already closed the socket and called
      // on_disconnect (for losses after CONNACK) - or the connection never
      // came up (TLS, refused, connect failure).
      OnLoopEnded(rc);
      return;
    }
  }

  void OnLoopEnded(int rc) {
    const int err = errno;
    bool lost = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (rc != MOSQ_ERR_NO_CONN) NoteFailureLocked(rc, err);
      if (disconnect_rc_ == 0) disconnect_rc_ = rc == MOSQ_ERR_NO_CONN ? MOSQ_ERR_CONN_LOST : rc;
      if (state_ == State::kConnected) lost = true;
      state_ = State::kDisconnected;
      loop_done_ = true;
      cv_.notify_all();
    }
    if (lost && !disconnecting_) listener_->OnConnectionLost(LossCause());
  }

  // Records why the connection failed or ended (the first reason wins).
  // `err`: errno of the network thread right after libmosquitto failed.
  void NoteFailureLocked(int rc, int err) {
    if (!loss_reason_.empty()) return;
    if (rc == MOSQ_ERR_ERRNO && err != 0) disconnect_errno_ = err;
    if (rc != MOSQ_ERR_ERRNO) {
      loss_reason_ = Reason(rc, err);
    } else if (err == 0) {
      // libmosquitto said "see errno" but errno was clobbered on the way:
      // leave the reason to a later report (the loop's end) or the fallback.
    } else if (err != EPROTO) {
      loss_reason_ = std::strerror(err);
    } else if (!errors_.empty() || state_ != State::kConnecting) {
      // libmosquitto sets EPROTO for a TLS failure; OpenSSL's reason, if
      // it had one, came through the log callback (errors_).
      loss_reason_ = "TLS error";
    } else {
      // The socket failed under TLS with nothing in OpenSSL's queue: the
      // broker closed it after our side of the handshake, so its alert was
      // never read. With TLS 1.3 that is how a broker rejects a client
      // certificate.
      loss_reason_ = "TLS connection closed by the broker before CONNACK, no TLS alert "
                     "received (a broker rejecting the client certificate does this)";
    }
  }

  std::string LossCause() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string s = "connection lost: " + (loss_reason_.empty()
                                               ? Reason(disconnect_rc_, disconnect_errno_)
                                               : loss_reason_);
    if (!errors_.empty()) s += " (" + errors_ + ")";
    return s;
  }

  // Stops and joins the network thread. With wait_for_disconnect the
  // thread gets a moment to write a queued DISCONNECT and end by itself.
  void StopLoop(bool wait_for_disconnect) {
    if (!loop_.joinable()) return;
    if (wait_for_disconnect) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(1000), [&] { return loop_done_; });
    }
    stop_loop_ = true;
    loop_.join();
  }

  void DestroyClient() {
    if (mosq_ == nullptr) return;
    disconnecting_ = true;
    StopLoop(false);
    mosquitto_destroy(mosq_);  // frees what it still queued; no callback after this
    mosq_ = nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kDisconnected;
    pending_.clear();
    early_.clear();
  }

  // libmosquitto's text for rc; for MOSQ_ERR_ERRNO the system's for `err`,
  // which the caller read right after the failing call on the same thread
  // (errno 0: lost on the way; never printed as "Success").
  static std::string Reason(int rc, int err) {
    if (rc == MOSQ_ERR_ERRNO) return SystemErrorText(err);
    return mosquitto_strerror(rc);
  }

  // libmosquitto callbacks (network thread).
  static void OnConnectThunk(struct mosquitto*, void* self, int rc) {
    auto* t = static_cast<MosquittoTransport*>(self);
    std::lock_guard<std::mutex> lock(t->mu_);
    if (rc == 0) {
      t->state_ = State::kConnected;
    } else {
      t->connack_rc_ = rc;
      t->state_ = State::kDisconnected;
    }
    t->cv_.notify_all();
  }

  static void OnDisconnectThunk(struct mosquitto*, void* self, int rc) {
    const int err = errno;  // before anything else can change it
    auto* t = static_cast<MosquittoTransport*>(self);
    bool lost = false;
    {
      std::lock_guard<std::mutex> lock(t->mu_);
      if (t->state_ == State::kConnected && rc != 0) lost = true;
      if (rc != 0 && t->disconnect_rc_ == 0) t->disconnect_rc_ = rc;
      if (rc != 0) t->NoteFailureLocked(rc, err);
      t->state_ = State::kDisconnected;
      t->cv_.notify_all();
    }
    if (lost && !t->disconnecting_) t->listener_->OnConnectionLost(t->LossCause());
  }

  static void OnPublishThunk(struct mosquitto*, void* self, int mid) {
    auto* t = static_cast<MosquittoTransport*>(self);
    uint64_t tag = 0;
    {
      std::lock_guard<std::mutex> lock(t->mu_);
      auto it = t->pending_.find(mid);
      if (it == t->pending_.end()) {
        t->early_.insert(mid);  // Publish has not recorded it yet
        return;
      }
      tag = it->second;
      t->pending_.erase(it);
      if (t->pending_.empty()) t->cv_.notify_all();
    }
    t->listener_->OnPublishAcked(tag);
  }

  static void OnLogThunk(struct mosquitto*, void* self, int level, const char* msg) {
    if (level != MOSQ_LOG_ERR && level != MOSQ_LOG_WARNING) return;
    auto* t = static_cast<MosquittoTransport*>(self);
    std::lock_guard<std::mutex> lock(t->mu_);
    if (t->errors_.size() > 512) return;
    if (!t->errors_.empty()) t->errors_ += "; ";
    t->errors_ += msg;
  }

  const TransportOptions options_;
  TransportListener* const listener_;
  struct mosquitto* mosq_ = nullptr;  // caller's thread
  std::thread loop_;
  std::atomic<bool> stop_loop_{false};
  std::atomic<bool> disconnecting_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;  // state_, pending_ empty, loop_done_
  State state_ = State::kDisconnected;
  int connack_rc_ = -1;
  int disconnect_rc_ = 0;
  int disconnect_errno_ = 0;   // errno that came with a MOSQ_ERR_ERRNO end (0: none)
  bool loop_done_ = false;     // the network thread has ended
  std::string loss_reason_;   // why the connection ended (network thread's view)
  std::string errors_;  // libmosquitto's error log lines (TLS/OpenSSL) this connection
  std::unordered_map<int, uint64_t> pending_;  // mid -> tag
  std::unordered_set<int> early_;              // acked before Publish recorded the mid
};

}  // namespace

StatusOr<std::unique_ptr<Transport>> NewMosquittoTransport(const TransportOptions& options,
                                                           TransportListener* listener) {
  if (listener == nullptr) return InvalidArgument("transport: no listener");
  if (options.client_id.empty()) return InvalidArgument("transport: empty client id");
  if (options.broker.host.empty()) return InvalidArgument("transport: no broker address");
  InitLibraryOnce();
  TransportOptions opts = options;
  opts.tls.enabled = options.broker.tls;
  return std::unique_ptr<Transport>(std::make_unique<MosquittoTransport>(std::move(opts), listener));
}

}  // namespace sluice
