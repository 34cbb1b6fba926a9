// An MQTT subscriber for tests (Paho C++ async client): subscribes at QoS 1
// to one topic filter and collects every message. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sluice {
namespace testing {

struct ReceivedMessage {
  std::string topic;
  std::string payload;
  bool retained = false;
  int qos = 0;
};

class Subscriber {
 public:
  struct Options {
    std::string url;            // tcp://127.0.0.1:PORT
    std::string topic_filter = "#";
    std::string client_id;      // empty: generated
    // false: a persistent session (with a persistent broker, messages
    // published while the subscriber is away are queued for it).
    bool clean_session = true;
    // Reconnect automatically (100 ms .. 1 s) after a lost connection.
    bool auto_reconnect = false;
  };

  explicit Subscriber(Options options);
  // A clean-session subscriber to `topic_filter` on `url`.
  Subscriber(const std::string& url, const std::string& topic_filter);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Connects and subscribes (waits for the SUBACK). Bounded (10 s).
  bool Start(std::string* error = nullptr);
  void Stop();
  bool connected() const;

  // Copies of everything received so far, in arrival order.
  std::vector<ReceivedMessage> Messages() const;
  size_t Count() const;
  void Clear();

  // Waits up to timeout_us until pred(messages) holds (re-evaluated on each
  // arrival). Returns the last result of pred.
  bool WaitFor(const std::function<bool(const std::vector<ReceivedMessage>&)>& pred,
               int64_t timeout_us) const;
  // Waits for at least n messages.
  bool WaitForCount(size_t n, int64_t timeout_us) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace testing
}  // namespace sluice
