// Transport over the Paho MQTT C++ async client (1.2). Every mqtt::exception
// stops here and becomes a Status.
//
// Per-message cost: one Paho message (which we subclass to carry the tag, so
// no side table and no extra allocation), Paho's own delivery token, a copy
// of the payload, and its serialised form in the in-memory store below while
// it is queued or in flight. Topics are cached as shared string_refs so a
// topic is not copied per message. One action listener (this object) serves
// every publish.
//
// Why a store: Paho C (1.3.12, still so upstream) copies each publish's topic
// and payload into a queued command; MQTTAsync_destroy NULLs those pointers
// in every queued PUBLISH (MQTTAsync_NULLPublishCommands, meant for ones
// already handed to the protocol) and so leaks the commands not yet written
// when a connection dropped: ~200 B per message, a window's worth per
// reconnect. With a user persistence, Paho frees the copies as soon as it has
// stored the command and reads it back when it writes it, so nothing is left
// to leak; destroying the client clears the store.
//
// Built with SLUICE_TRANSPORT_PAHO=OFF, only NormalizeBrokerUrl is here and
// NewPahoTransport says the transport was left out.
#include "common/build_options.h"
#if SLUICE_TRANSPORT_PAHO
#include <mqtt/async_client.h>
#endif
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "agent/uplink/paho_inbound.h"
#include "agent/uplink/tls_probe.h"
#include "agent/uplink/transport.h"
#include "common/log.h"
#include "common/mqtt_text.h"

namespace sluice {
#if SLUICE_TRANSPORT_PAHO
namespace {

constexpr const char* kLog = "uplink";

// A Paho message that remembers the caller's tag. The delivery token keeps
// its message alive until the token completes, so the tag is always found.
class TaggedMessage final : public mqtt::message {
 public:
  TaggedMessage(mqtt::string_ref topic, const void* payload, size_t len, int qos,
                bool retained, uint64_t tag)
      : mqtt::message(std::move(topic), payload, len, qos, retained), tag_(tag) {}
  uint64_t tag() const { return tag_; }

 private:
  uint64_t tag_;
};

// Paho reports a failed TCP connect only as "TCP/TLS connect failure",
// without the system's reason. Asks the system: one TCP connect to the
// broker, bounded by timeout_ms. Returns "" if it connects (the failure
// was above TCP); else the reason ("Connection refused", "timed out", "no
// address for host").
std::string ProbeTcp(const BrokerAddress& broker, int timeout_ms) {
  const std::string& host = broker.host;
  const std::string port = std::to_string(broker.port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int gai = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (gai != 0) return std::string("no address for ") + host + ": " + gai_strerror(gai);
  std::string why = "timed out";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int err = 0;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        if (poll(&p, 1, timeout_ms) == 1) {
          socklen_t len = sizeof err;
          if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        } else {
          err = ETIMEDOUT;
        }
      }
    }
    close(fd);
    if (err == 0) {
      why.clear();
      break;
    }
    why = err == ETIMEDOUT ? "timed out" : std::strerror(err);
  }
  freeaddrinfo(res);
  return why;
}

// Paho's persistence, in memory and per client: holds the serialised
// commands and in-flight packets Paho asks it to (see the file comment). No
// restore across clients: open() starts empty, close() frees everything.
// Thread-safe (Paho calls it from the caller's and its own threads).
class MemoryPersistence final : public mqtt::iclient_persistence {
 public:
  void open(const mqtt::string&, const mqtt::string&) override { clear(); }
  void close() override { clear(); }
  void clear() override {
    std::map<std::string, std::string> gone;
    std::lock_guard<std::mutex> lock(mu_);
    gone.swap(store_);
  }
  bool contains_key(const mqtt::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    return store_.count(key) > 0;
  }
  mqtt::string_collection keys() const override {
    mqtt::string_collection out;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& kv : store_) out.push_back(kv.first);
    return out;
  }
  void put(const mqtt::string& key, const std::vector<mqtt::string_view>& bufs) override {
    std::string value;
    size_t n = 0;
    for (const auto& b : bufs) n += b.size();
    value.reserve(n);
    for (const auto& b : bufs) value.append(b.data(), b.size());
    std::lock_guard<std::mutex> lock(mu_);
    store_[key] = std::move(value);
  }
  mqtt::string get(const mqtt::string& key) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = store_.find(key);
    if (it == store_.end()) throw mqtt::persistence_exception();
    return it->second;
  }
  void remove(const mqtt::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    store_.erase(key);
  }
 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> store_;
};

Status FromException(const char* what, const mqtt::exception& e) {
  StatusCode code = StatusCode::kUnavailable;
  if (e.get_return_code() == MQTTASYNC_BAD_UTF8_STRING ||
      e.get_return_code() == MQTTASYNC_NULL_PARAMETER ||
      e.get_return_code() == MQTTASYNC_BAD_QOS || e.get_return_code() == MQTTASYNC_BAD_STRUCTURE ||
      e.get_return_code() == MQTTASYNC_BAD_PROTOCOL) {
    code = StatusCode::kInvalidArgument;
  }
  return Status(code, std::string(what) + ": " + e.what());
}

class PahoTransport final : public Transport, private mqtt::iaction_listener {
 public:
  PahoTransport(TransportOptions options, TransportListener* listener)
      : options_(std::move(options)), paho_url_(options_.broker.PahoUri()), listener_(listener) {}

  ~PahoTransport() override {
    Disconnect(0);
    DestroyClient();
  }

  void DestroyClient() {
    if (!client_) return;
    disconnecting_ = true;
    try {
      if (client_->is_connected()) client_->disconnect(0)->wait_for(std::chrono::seconds(1));
      client_->disable_callbacks();
    } catch (const mqtt::exception&) {
    }
    client_.reset();  // no Paho callback for this client runs after this
  }

  Status Init() {
    try {
      // Paho's default maxBufferedMessages (100) makes publish() fail with
      // MQTT error [-12] even while connected: size it from max_inflight.
      const int inflight = static_cast<int>(options_.max_inflight) + kMargin;
      mqtt::create_options co(MQTTVERSION_3_1_1, 2 * inflight);
      co.set_send_while_disconnected(false);
      co.set_delete_oldest_messages(false);
      co.set_restore_messages(false);
      // Every queued command goes to the store, QoS 0 too (see the file
      // comment); the store is not durable: the ring is.
      co.set_persist_qos0(true);
      client_ = std::make_unique<mqtt::async_client>(paho_url_, options_.client_id, co,
                                                     &store_);
      client_->set_connection_lost_handler([this](const std::string& cause) {
        if (disconnecting_) return;
        listener_->OnConnectionLost(cause.empty() ? "connection lost" : cause);
      });
    } catch (const mqtt::exception& e) {
      return FromException("mqtt client", e);
    }
    return Status::Ok();
  }

  Status Connect(bool* resumed) override {
    // A fresh Paho client per connection: an old client may still hold
    // publish commands queued before the loss, which it would send on the
    // new connection ahead of the uplink's resend, breaking seq order. So
    // nothing is carried across (*resumed = false). What the old client
    // still queued is freed with it (store_; agent_reconnect_memory_test).
    if (resumed != nullptr) *resumed = false;
    if (used_) {
      DestroyClient();
      SLUICE_RETURN_IF_ERROR(Init());
    }
    used_ = true;
    mqtt::connect_options co;
    co.set_mqtt_version(MQTTVERSION_3_1_1);
    co.set_clean_session(true);
    co.set_automatic_reconnect(false);  // the uplink reconnects with backoff
    co.set_keep_alive_interval(options_.keepalive_s);
    const int64_t timeout_s = std::max<int64_t>(1, (options_.connect_timeout_us + 999999) / 1000000);
    co.set_connect_timeout(static_cast<int>(timeout_s));
    co.set_max_inflight(static_cast<int>(options_.max_inflight) + kMargin);
    if (!options_.username.empty()) co.set_user_name(options_.username);
    if (!options_.password.empty()) co.set_password(options_.password);
    if (!options_.will_topic.empty()) {
      co.set_will(mqtt::will_options(options_.will_topic, options_.will_payload.data(),
                                     options_.will_payload.size(), 1, true));
    }
    if (options_.tls.enabled) {
      // No ssl error handler: Paho C++ 1.2 points the C struct's
      // error-callback context at whichever ssl_options copy it last
      // updated, which can be a copy that is gone by the time Paho's
      // thread reports a handshake error (ASan: a read of a dead stack
      // frame in agent_tls_test). The reasons come from ProbeTlsRefusal.
      if (!ssl_) {
        ssl_ = std::make_unique<mqtt::ssl_options>();
        if (!options_.tls.ca_file.empty()) ssl_->set_trust_store(options_.tls.ca_file);
        if (!options_.tls.cert_file.empty()) ssl_->set_key_store(options_.tls.cert_file);
        if (!options_.tls.key_file.empty()) ssl_->set_private_key(options_.tls.key_file);
        ssl_->set_enable_server_cert_auth(options_.tls.verify);
        ssl_->set_verify(options_.tls.verify);
      }
      co.set_ssl(*ssl_);
    }
    try {
      disconnecting_ = false;
      connect_started_us_ = paho_inbound::NowUs();
      mqtt::token_ptr tok = client_->connect(std::move(co));
      // Paho enforces connect_timeout itself; the extra second only guards
      // against a token that never completes.
      if (!tok->wait_for(std::chrono::milliseconds(options_.connect_timeout_us / 1000 + 1000))) {
        Disconnect(0);
        return Status(StatusCode::kTimeout, "connect to " + options_.broker.ToString() +
                                                " timed out");
      }
      return Status::Ok();
    } catch (const mqtt::exception& e) {
      std::string what = e.what();
      // Paho's own errors are negative; 1..5 is the broker's MQTT 3.1.1
      // CONNACK refusal, named as libmosquitto's transport names it.
      const int rc = e.get_return_code();
      if (rc >= 1 && rc <= 5) what = ConnackReason(rc);
      if (rc == MQTTASYNC_FAILURE || rc == MQTTASYNC_DISCONNECTED) {
        const std::string tcp = ProbeTcp(options_.broker, ProbeTimeoutMs());
        if (!tcp.empty()) what += " (TCP connect: " + tcp + ")";
      }
      if (options_.tls.enabled && rc < 0) {
        // Paho reports a TLS refusal as a bare connect failure (a host
        // name mismatch is its own check after the handshake; a broker
        // rejecting our client certificate answers after it with TLS 1.3):
        // ask OpenSSL once more, with the same trust, certificate and host
        // check.
        const std::string tls = ProbeTlsRefusal(options_.broker, options_.tls, ProbeTimeoutMs());
        if (!tls.empty()) what += " (tls: " + tls + ")";
      }
      return Unavailable("connect to " + options_.broker.ToString() + ": " + what);
    }
  }

  Status Publish(const std::string& topic, const void* payload, size_t size, int qos,
                 bool retained, uint64_t tag) override {
    if (!client_) return Unavailable("publish: not connected");
    try {
      auto msg = std::make_shared<TaggedMessage>(TopicRef(topic), payload, size, qos,
                                                 retained, tag);
      client_->publish(std::move(msg), nullptr, *this);
      return Status::Ok();
    } catch (const mqtt::exception& e) {
      return FromException("publish", e);
    }
  }

  void Disconnect(int64_t timeout_us) override {
    if (!client_) return;
    disconnecting_ = true;
    try {
      if (!client_->is_connected()) return;
      // Paho C checks a pending disconnect's timeout only in its timeout
      // loop, every 3 s, so disconnect(timeout) lasted seconds even when
      // the last PUBACK came at once. Wait for the acks here instead, then
      // disconnect without a timeout. (A real-time wait on Paho's threads:
      // steady_clock, not the injected Clock.)
      const auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::microseconds(std::max<int64_t>(0, timeout_us));
      while (client_->is_connected() && !client_->get_pending_delivery_tokens().empty() &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      if (!client_->is_connected()) return;
      client_->disconnect(0)->wait_for(std::chrono::seconds(1));
    } catch (const mqtt::exception& e) {
      LogDebug(kLog, std::string("disconnect: ") + e.what());
    }
  }

  bool IsConnected() const override { return client_ && client_->is_connected(); }

  // From Paho's protocol trace (agent/uplink/paho_inbound.h): every packet
  // the broker sent this connection, PINGRESPs included.
  int64_t InboundSilenceUs() const override {
    if (!IsConnected()) return -1;
    const int64_t last = paho_inbound::LastReceivedUs(options_.client_id, connect_started_us_);
    return last < 0 ? -1 : std::max<int64_t>(0, paho_inbound::NowUs() - last);
  }

 private:
  static constexpr int kMargin = 16;  // status messages beside the window

  // Bound on each diagnostic probe after a failed connect.
  int ProbeTimeoutMs() const {
    return static_cast<int>(std::clamp<int64_t>(options_.connect_timeout_us / 1000, 100, 2000));
  }

  // mqtt::iaction_listener, for publishes (Paho's threads).
  void on_success(const mqtt::token& tok) override {
    // Only publishes use this listener, and Paho gives them delivery tokens
    // carrying the message we created.
    const auto& dtok = static_cast<const mqtt::delivery_token&>(tok);
    mqtt::const_message_ptr msg = dtok.get_message();
    if (msg) listener_->OnPublishAcked(static_cast<const TaggedMessage*>(msg.get())->tag());
  }
  void on_failure(const mqtt::token& tok) override {
    // An unacknowledged publish is resent by the uplink from its cursor.
    LogDebug(kLog, "publish failed: rc " + std::to_string(tok.get_return_code()));
  }

  // A shared topic string, so a topic is allocated once, not per message.
  mqtt::string_ref TopicRef(const std::string& topic) {
    std::lock_guard<std::mutex> lock(topics_mu_);
    auto it = topics_.find(topic);
    if (it != topics_.end()) return it->second;
    if (topics_.size() >= kMaxCachedTopics) topics_.clear();
    mqtt::string_ref ref(topic);
    topics_.emplace(topic, ref);
    return ref;
  }

  static constexpr size_t kMaxCachedTopics = 1024;

  const TransportOptions options_;
  const std::string paho_url_;
  TransportListener* const listener_;
  MemoryPersistence store_;                 // outlives client_ (declared first)
  std::unique_ptr<mqtt::ssl_options> ssl_;  // outlives client_ (declared first)
  std::unique_ptr<mqtt::async_client> client_;
  std::atomic<bool> disconnecting_{false};
  bool used_ = false;  // Connect() was called on client_
  std::atomic<int64_t> connect_started_us_{0};  // paho_inbound::NowUs()
  std::mutex topics_mu_;
  std::unordered_map<std::string, mqtt::string_ref> topics_;
};

}  // namespace
#endif  // SLUICE_TRANSPORT_PAHO

StatusOr<std::string> NormalizeBrokerUrl(const std::string& url, bool* tls) {
  StatusOr<BrokerAddress> broker = ParseBrokerAddress(url);
  if (!broker.ok()) return broker.status();
  *tls = broker->tls;
  return broker->PahoUri();
}

#if !SLUICE_TRANSPORT_PAHO
StatusOr<std::unique_ptr<Transport>> NewPahoTransport(const TransportOptions&,
                                                      TransportListener*) {
  return InvalidArgument(
      "the Paho transport was left out of this build (SLUICE_TRANSPORT_PAHO=OFF)");
}
#else
StatusOr<std::unique_ptr<Transport>> NewPahoTransport(const TransportOptions& options,
                                                      TransportListener* listener) {
  StatusOr<TransportOptions> opts = PrepareTransportOptions(options, listener);
  if (!opts.ok()) return opts.status();
  paho_inbound::Install();
  auto t = std::make_unique<PahoTransport>(std::move(opts).value(), listener);
  SLUICE_RETURN_IF_ERROR(t->Init());
  return std::unique_ptr<Transport>(std::move(t));
}
#endif  // SLUICE_TRANSPORT_PAHO

}  // namespace sluice
