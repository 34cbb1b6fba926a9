// Paho C (MQTTAsync) clients for sluice-bench: a counting subscriber whose
// messageArrived callback only records which seqs arrived, and a publisher
// with a bounded in-flight window. Paho C rather than C++: the subscriber
// must never be the bottleneck of what it measures.
#pragma once

#include <MQTTAsync.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace sluice {
namespace bench {

// How the counter reads a payload's seqs.
enum class PayloadKind {
  kJson,         // one event per message, `"seq":N` in the JSON
  kFlatbuffers,  // a sluice.fb.Batch: every event's seq
};

struct CountResult {
  uint64_t messages = 0;    // counted messages (ignored topic excluded)
  uint64_t events = 0;      // seqs seen, duplicates included
  uint64_t distinct = 0;    // distinct seqs in 1..expected
  uint64_t duplicates = 0;  // events - distinct (in range)
  uint64_t out_of_range = 0;
  uint64_t undecodable = 0;  // payloads without a readable seq
  uint64_t payload_bytes = 0;
  int64_t first_us = 0;     // NowUs() of the first / the completing arrival
  int64_t complete_us = 0;  // 0 until distinct == expected
  int64_t last_us = 0;      // last counted arrival
};

// Subscribes to `filter` and counts what arrives. Thread-safe.
class Counter {
 public:
  struct Options {
    std::string url;           // tcp://127.0.0.1:PORT
    std::string client_id;
    std::string filter = "sluice/#";
    std::string ignore_topic;  // exact topic not counted (the status topic)
    int qos = 1;
    bool clean_session = true;
    PayloadKind kind = PayloadKind::kJson;
    uint64_t expected = 0;     // seqs 1..expected
  };

  explicit Counter(Options options);
  ~Counter();
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Connects and, if `subscribe`, subscribes (waits for the SUBACK).
  // Bounded by timeout_us.
  bool Start(bool subscribe, int64_t timeout_us, std::string* error);
  // Disconnects (bounded) and destroys the client.
  void Stop();

  // Waits until every seq 1..expected arrived, or timeout, or no arrival
  // for `idle_us` after the first one. True when complete.
  bool WaitComplete(int64_t timeout_us, int64_t idle_us);
  CountResult Result() const;
  uint64_t distinct() const { return distinct_.load(); }

 private:
  static int OnMessage(void* ctx, char* topic, int topic_len, MQTTAsync_message* m);
  static void OnLost(void* ctx, char* cause);
  void Mark(uint64_t seq);

  Options options_;
  MQTTAsync client_ = nullptr;
  mutable std::mutex mu_;  // guards the counts below (callback thread)
  std::vector<uint8_t> seen_;
  CountResult r_;
  std::atomic<uint64_t> distinct_{0};
  std::atomic<int64_t> last_arrival_us_{0};
};

// Publishes N QoS 1 messages `{"agent":..,"seq":i,...}` padded to
// `payload_size` bytes with at most `window` in flight. Blocking; one per
// process (it is run as the `_publish` worker subcommand).
struct PublishOptions {
  std::string url;
  std::string client_id = "bench-pub";
  std::string topic = "sluice/bench/pub";
  uint64_t count = 0;
  size_t payload_size = 120;
  size_t window = 256;
  int qos = 1;
  int64_t timeout_us = 300000000;
};

struct PublishResult {
  bool ok = false;
  std::string error;
  uint64_t sent = 0;
  uint64_t acked = 0;
  double seconds = 0;  // first send to last PUBACK
};

PublishResult PublishMessages(const PublishOptions& options);

// `sluice-bench _publish URL COUNT SIZE WINDOW TOPIC`: PublishMessages in a
// child process (so its CPU and RSS are its own), printing one result line.
int PublishWorkerMain(int argc, char** argv);

}  // namespace bench
}  // namespace sluice
