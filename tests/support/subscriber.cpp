#include "tests/support/subscriber.h"

#include <mqtt/async_client.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <utility>

namespace sluice {
namespace testing {

class Subscriber::Impl : public mqtt::callback {
 public:
  explicit Impl(Options options) : options_(std::move(options)) {
    static std::atomic<int> counter{0};
    if (options_.client_id.empty()) {
      options_.client_id = "test-sub-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter++);
    }
  }

  bool Start(std::string* error) {
    try {
      client_ = std::make_unique<mqtt::async_client>(options_.url, options_.client_id);
      client_->set_callback(*this);
      mqtt::connect_options co;
      co.set_clean_session(options_.clean_session);
      co.set_keep_alive_interval(10);
      co.set_connect_timeout(5);
      co.set_mqtt_version(MQTTVERSION_3_1_1);
      if (options_.auto_reconnect) co.set_automatic_reconnect(1, 1);
      if (!client_->connect(co)->wait_for(std::chrono::seconds(10))) {
        if (error) *error = "subscriber connect timed out";
        return false;
      }
      if (!client_->subscribe(options_.topic_filter, 1)->wait_for(std::chrono::seconds(10))) {
        if (error) *error = "subscribe timed out";
        return false;
      }
      return true;
    } catch (const mqtt::exception& e) {
      if (error) *error = e.what();
      return false;
    }
  }

  void Stop() {
    if (!client_) return;
    try {
      if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const mqtt::exception&) {
    }
    client_.reset();
  }

  // mqtt::callback (Paho's thread).
  void connected(const std::string&) override {
    // After an automatic reconnect with a clean session the subscription
    // is gone: subscribe again (a persistent session keeps it).
    if (options_.clean_session && client_) {
      try {
        client_->subscribe(options_.topic_filter, 1);
      } catch (const mqtt::exception&) {
      }
    }
  }
  void connection_lost(const std::string&) override {}
  void message_arrived(mqtt::const_message_ptr msg) override {
    ReceivedMessage m;
    m.topic = msg->get_topic();
    m.payload = msg->get_payload_str();
    m.retained = msg->is_retained();
    m.qos = msg->get_qos();
    {
      std::lock_guard<std::mutex> lock(mu_);
      messages_.push_back(std::move(m));
    }
    cv_.notify_all();
  }

  Options options_;
  std::unique_ptr<mqtt::async_client> client_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<ReceivedMessage> messages_;
};

Subscriber::Subscriber(Options options) : impl_(new Impl(std::move(options))) {}
Subscriber::Subscriber(const std::string& url, const std::string& topic_filter)
    : Subscriber([&] {
        Options o;
        o.url = url;
        o.topic_filter = topic_filter;
        return o;
      }()) {}
Subscriber::~Subscriber() { Stop(); }

bool Subscriber::Start(std::string* error) { return impl_->Start(error); }
void Subscriber::Stop() { impl_->Stop(); }
bool Subscriber::connected() const {
  return impl_->client_ && impl_->client_->is_connected();
}

std::vector<ReceivedMessage> Subscriber::Messages() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->messages_;
}

size_t Subscriber::Count() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->messages_.size();
}

void Subscriber::Clear() {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->messages_.clear();
}

bool Subscriber::WaitFor(
    const std::function<bool(const std::vector<ReceivedMessage>&)>& pred,
    int64_t timeout_us) const {
  std::unique_lock<std::mutex> lock(impl_->mu_);
  return impl_->cv_.wait_for(lock, std::chrono::microseconds(timeout_us),
                             [&] { return pred(impl_->messages_); });
}

bool Subscriber::WaitForCount(size_t n, int64_t timeout_us) const {
  return WaitFor([n](const std::vector<ReceivedMessage>& m) { return m.size() >= n; },
                 timeout_us);
}

}  // namespace testing
}  // namespace sluice
