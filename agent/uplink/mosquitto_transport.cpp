// Transport over libmosquitto (2.0), through common/mosquitto_client.h. A
// fresh client per connection, driven by our own network thread
// (MosquittoClient::RunLoop, which never reconnects by itself: a new
// connection never sends the publishes queued before a loss, ahead of the
// uplink's resend). Destroying the client frees whatever was still queued
// (checked under LSan by agent_reconnect_memory_test "[memory]").
//
// Threads: the caller (one uplink thread) runs Connect/Publish/Disconnect;
// the network thread runs the loop and every callback. The client is
// threaded (MosquittoOptions::threaded): Publish only queues the packet and
// wakes the network thread, so it never blocks on the network.
#include <algorithm>
#include <atomic>
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
#include "common/mosquitto_client.h"

namespace sluice {
namespace {

constexpr int kMargin = 16;         // status messages beside the window
constexpr int kLoopTimeoutMs = 100;  // network thread's poll; publishes wake it

class MosquittoTransport final : public Transport, private MosquittoListener {
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
      loop_done_ = false;
    }
    disconnecting_ = false;
    StatusOr<std::unique_ptr<MosquittoClient>> client =
        MosquittoClient::Create(ClientOptions(), this);
    if (!client.ok()) return client.status();
    client_ = std::move(*client);
    Status st = client_->Connect();
    if (!st.ok()) {
      DestroyClient();
      return Unavailable("connect to " + options_.broker.ToString() + ": " + st.message());
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
      const std::string errors = client_->LibraryErrors();
      if (!errors.empty()) why += " (" + errors + ")";
    } else {
      why = client_->LastError();
    }
    lock.unlock();
    disconnecting_ = true;
    DestroyClient();
    return Status(code, "connect to " + options_.broker.ToString() + ": " + why);
  }

  Status Publish(const std::string& topic, const void* payload, size_t size, int qos,
                 bool retained, uint64_t tag) override {
    if (client_ == nullptr || !IsConnected()) return Unavailable("publish: not connected");
    int mid = 0;
    Status st = client_->Publish(topic, payload, size, qos, retained, &mid);
    if (!st.ok()) return Status(st.code(), "publish: " + st.message());
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
    if (client_ == nullptr) return;
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
    client_->Disconnect();
    StopLoop(/*wait_for_disconnect=*/true);
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kDisconnected;
  }

  bool IsConnected() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return state_ == State::kConnected;
  }

  // Only Connect/Disconnect (the same caller's thread) replace client_.
  int64_t InboundSilenceUs() const override {
    return client_ == nullptr ? -1 : client_->InboundSilenceUs();
  }

 private:
  enum class State { kDisconnected, kConnecting, kConnected };

  MosquittoOptions ClientOptions() const {
    MosquittoOptions o;
    o.broker = options_.broker;
    o.client_id = options_.client_id;
    o.username = options_.username;
    o.password = options_.password;
    o.tls.ca_file = options_.tls.ca_file;
    o.tls.cert_file = options_.tls.cert_file;
    o.tls.key_file = options_.tls.key_file;
    o.tls.verify = options_.tls.verify;
    o.keepalive_s = options_.keepalive_s;
    o.will.topic = options_.will_topic;
    o.will.payload = options_.will_payload;
    o.will.qos = 1;
    o.will.retain = true;
    o.send_maximum = static_cast<int>(std::min<size_t>(options_.max_inflight, 65000)) + kMargin;
    o.threaded = true;  // Publish never blocks on the network
    return o;
  }

  // Network thread: runs until the connection ends or StopLoop().
  void NetworkLoop() {
    if (!client_->RunLoop(stop_loop_, kLoopTimeoutMs).ok()) OnLoopEnded();
  }

  void OnLoopEnded() {
    bool lost = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ == State::kConnected) lost = true;
      state_ = State::kDisconnected;
      loop_done_ = true;
      cv_.notify_all();
    }
    if (lost && !disconnecting_) listener_->OnConnectionLost(LossCause());
  }

  std::string LossCause() const { return "connection lost: " + client_->LastError(); }

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
    if (client_ == nullptr) return;
    disconnecting_ = true;
    StopLoop(false);
    client_.reset();  // frees what it still queued; no callback after this
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kDisconnected;
    pending_.clear();
    early_.clear();
  }

  // MosquittoListener (network thread).
  void OnConnect(int rc) override {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = rc == 0 ? State::kConnected : State::kDisconnected;
    cv_.notify_all();
  }

  void OnDisconnect(int rc) override {
    bool lost = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ == State::kConnected && rc != 0) lost = true;
      state_ = State::kDisconnected;
      cv_.notify_all();
    }
    if (lost && !disconnecting_) listener_->OnConnectionLost(LossCause());
  }

  void OnPublish(int mid) override {
    uint64_t tag = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pending_.find(mid);
      if (it == pending_.end()) {
        early_.insert(mid);  // Publish has not recorded it yet
        return;
      }
      tag = it->second;
      pending_.erase(it);
      if (pending_.empty()) cv_.notify_all();
    }
    listener_->OnPublishAcked(tag);
  }

  const TransportOptions options_;
  TransportListener* const listener_;
  std::unique_ptr<MosquittoClient> client_;  // caller's thread; one per connection
  std::thread loop_;
  std::atomic<bool> stop_loop_{false};
  std::atomic<bool> disconnecting_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;  // state_, pending_ empty, loop_done_
  State state_ = State::kDisconnected;
  bool loop_done_ = false;     // the network thread has ended
  std::unordered_map<int, uint64_t> pending_;  // mid -> tag
  std::unordered_set<int> early_;              // acked before Publish recorded the mid
};

}  // namespace

StatusOr<std::unique_ptr<Transport>> NewMosquittoTransport(const TransportOptions& options,
                                                           TransportListener* listener) {
  StatusOr<TransportOptions> opts = PrepareTransportOptions(options, listener);
  if (!opts.ok()) return opts.status();
  return std::unique_ptr<Transport>(
      std::make_unique<MosquittoTransport>(std::move(opts).value(), listener));
}

}  // namespace sluice
