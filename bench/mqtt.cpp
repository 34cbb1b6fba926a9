#include "bench/mqtt.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <unistd.h>

#include <flatbuffers/flatbuffers.h>

#include "bench/util.h"
#include "schemas/sluice_generated.h"

namespace sluice {
namespace bench {
namespace {

// One pending asynchronous call (connect, subscribe, disconnect).
struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool ok = false;
  std::string error;

  static void Success(void* ctx, MQTTAsync_successData*) { static_cast<Waiter*>(ctx)->Set(true, ""); }
  static void Failure(void* ctx, MQTTAsync_failureData* d) {
    static_cast<Waiter*>(ctx)->Set(
        false, "code " + std::to_string(d ? d->code : 0) + (d && d->message ? std::string(": ") + d->message : ""));
  }
  void Set(bool success, const std::string& why) {
    std::lock_guard<std::mutex> lk(mu);
    done = true;
    ok = success;
    error = why;
    cv.notify_all();
  }
  bool Wait(int64_t timeout_us, std::string* why) {
    std::unique_lock<std::mutex> lk(mu);
    if (!cv.wait_for(lk, std::chrono::microseconds(timeout_us), [&] { return done; })) {
      *why = "timed out";
      return false;
    }
    if (!ok) *why = error;
    return ok;
  }
};

bool ParseJsonSeq(const char* p, size_t n, uint64_t* seq) {
  static const char kKey[] = "\"seq\":";
  const void* hit = memmem(p, n, kKey, sizeof(kKey) - 1);
  if (hit == nullptr) return false;
  const char* q = static_cast<const char*>(hit) + sizeof(kKey) - 1;
  const char* end = p + n;
  uint64_t v = 0;
  int digits = 0;
  while (q < end && *q >= '0' && *q <= '9' && digits < 20) {
    v = v * 10 + static_cast<uint64_t>(*q - '0');
    ++q;
    ++digits;
  }
  *seq = v;
  return digits > 0;
}

}  // namespace

Counter::Counter(Options options) : options_(std::move(options)) {
  seen_.assign(options_.expected + 1, 0);
}

Counter::~Counter() { Stop(); }

bool Counter::Start(bool subscribe, int64_t timeout_us, std::string* error) {
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  co.sendWhileDisconnected = 0;
  int rc = MQTTAsync_createWithOptions(&client_, options_.url.c_str(), options_.client_id.c_str(),
                                       MQTTCLIENT_PERSISTENCE_NONE, nullptr, &co);
  if (rc != MQTTASYNC_SUCCESS) {
    *error = "MQTTAsync_create: " + std::to_string(rc);
    client_ = nullptr;
    return false;
  }
  MQTTAsync_setCallbacks(client_, this, &Counter::OnLost, &Counter::OnMessage, nullptr);
  Waiter conn;
  MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
  opts.keepAliveInterval = 30;
  opts.cleansession = options_.clean_session ? 1 : 0;
  opts.connectTimeout = static_cast<int>(std::max<int64_t>(1, timeout_us / 1000000));
  opts.onSuccess = &Waiter::Success;
  opts.onFailure = &Waiter::Failure;
  opts.context = &conn;
  rc = MQTTAsync_connect(client_, &opts);
  if (rc != MQTTASYNC_SUCCESS || !conn.Wait(timeout_us, error)) {
    if (rc != MQTTASYNC_SUCCESS) *error = "MQTTAsync_connect: " + std::to_string(rc);
    *error = "subscriber connect to " + options_.url + ": " + *error;
    return false;
  }
  if (!subscribe) return true;
  Waiter sub;
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  ro.onSuccess = &Waiter::Success;
  ro.onFailure = &Waiter::Failure;
  ro.context = &sub;
  rc = MQTTAsync_subscribe(client_, options_.filter.c_str(), options_.qos, &ro);
  if (rc != MQTTASYNC_SUCCESS || !sub.Wait(timeout_us, error)) {
    if (rc != MQTTASYNC_SUCCESS) *error = "MQTTAsync_subscribe: " + std::to_string(rc);
    *error = "subscribe: " + *error;
    return false;
  }
  return true;
}

void Counter::Stop() {
  if (client_ == nullptr) return;
  if (MQTTAsync_isConnected(client_)) {
    Waiter w;
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 1000;
    d.onSuccess = [](void* ctx, MQTTAsync_successData*) { static_cast<Waiter*>(ctx)->Set(true, ""); };
    d.onFailure = [](void* ctx, MQTTAsync_failureData*) { static_cast<Waiter*>(ctx)->Set(false, ""); };
    d.context = &w;
    std::string why;
    if (MQTTAsync_disconnect(client_, &d) == MQTTASYNC_SUCCESS) w.Wait(3000000, &why);
  }
  MQTTAsync_destroy(&client_);
  client_ = nullptr;
}

void Counter::OnLost(void*, char* cause) {
  std::fprintf(stderr, "bench: subscriber lost its connection: %s\n", cause ? cause : "?");
  if (cause) MQTTAsync_free(cause);
}

void Counter::Mark(uint64_t seq) {
  r_.events++;
  if (seq == 0 || seq > options_.expected) {
    r_.out_of_range++;
    return;
  }
  if (seen_[seq]++ == 0) {
    r_.distinct++;
  } else {
    r_.duplicates++;
  }
}

int Counter::OnMessage(void* ctx, char* topic, int topic_len, MQTTAsync_message* m) {
  auto* self = static_cast<Counter*>(ctx);
  const size_t tlen = topic_len > 0 ? static_cast<size_t>(topic_len) : std::strlen(topic);
  const bool ignored = !self->options_.ignore_topic.empty() &&
                       self->options_.ignore_topic.size() == tlen &&
                       std::memcmp(self->options_.ignore_topic.data(), topic, tlen) == 0;
  if (!ignored) {
    const int64_t now = NowUs();
    const char* p = static_cast<const char*>(m->payload);
    const size_t n = static_cast<size_t>(std::max(0, m->payloadlen));
    std::lock_guard<std::mutex> lk(self->mu_);
    CountResult& r = self->r_;
    if (r.messages == 0) r.first_us = now;
    r.messages++;
    r.payload_bytes += n;
    r.last_us = now;
    if (self->options_.kind == PayloadKind::kJson) {
      uint64_t seq = 0;
      if (ParseJsonSeq(p, n, &seq)) {
        self->Mark(seq);
      } else {
        r.undecodable++;
      }
    } else {
      flatbuffers::Verifier v(reinterpret_cast<const uint8_t*>(p), n);
      if (fb::VerifyBatchBuffer(v)) {
        const fb::Batch* b = fb::GetBatch(p);
        if (b->events()) {
          for (const fb::Event* e : *b->events()) self->Mark(e->seq());
        }
      } else {
        r.undecodable++;
      }
    }
    if (r.complete_us == 0 && r.distinct == self->options_.expected) r.complete_us = now;
    self->distinct_.store(r.distinct, std::memory_order_relaxed);
    self->last_arrival_us_.store(now, std::memory_order_relaxed);
  }
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  return 1;
}

bool Counter::WaitComplete(int64_t timeout_us, int64_t idle_us) {
  const int64_t deadline = NowUs() + timeout_us;
  for (;;) {
    if (distinct_.load() >= options_.expected) return true;
    const int64_t now = NowUs();
    if (now >= deadline) return false;
    const int64_t last = last_arrival_us_.load();
    if (last != 0 && now - last > idle_us) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

CountResult Counter::Result() const {
  std::lock_guard<std::mutex> lk(mu_);
  return r_;
}

namespace {

struct PubState {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t acked = 0;
  bool lost = false;
  int64_t last_ack_us = 0;
};

void OnDelivered(void* ctx, MQTTAsync_token) {
  auto* s = static_cast<PubState*>(ctx);
  std::lock_guard<std::mutex> lk(s->mu);
  s->acked++;
  s->last_ack_us = NowUs();
  s->cv.notify_one();
}

void OnPubLost(void* ctx, char* cause) {
  auto* s = static_cast<PubState*>(ctx);
  if (cause) MQTTAsync_free(cause);
  std::lock_guard<std::mutex> lk(s->mu);
  s->lost = true;
  s->cv.notify_one();
}

int OnPubMessage(void*, char* topic, int, MQTTAsync_message* m) {
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  return 1;
}

}  // namespace

PublishResult PublishMessages(const PublishOptions& o) {
  PublishResult res;
  PubState state;
  MQTTAsync client = nullptr;
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  co.sendWhileDisconnected = 0;
  // The default of 100 refuses publishes past it (MQTT error -12).
  co.maxBufferedMessages = static_cast<int>(o.window + 100);
  int rc = MQTTAsync_createWithOptions(&client, o.url.c_str(), o.client_id.c_str(),
                                       MQTTCLIENT_PERSISTENCE_NONE, nullptr, &co);
  if (rc != MQTTASYNC_SUCCESS) {
    res.error = "MQTTAsync_create: " + std::to_string(rc);
    return res;
  }
  MQTTAsync_setCallbacks(client, &state, &OnPubLost, &OnPubMessage, &OnDelivered);
  Waiter conn;
  MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
  opts.keepAliveInterval = 30;
  opts.cleansession = 1;
  opts.maxInflight = static_cast<int>(o.window + 10);
  opts.onSuccess = &Waiter::Success;
  opts.onFailure = &Waiter::Failure;
  opts.context = &conn;
  rc = MQTTAsync_connect(client, &opts);
  if (rc != MQTTASYNC_SUCCESS || !conn.Wait(10000000, &res.error)) {
    if (rc != MQTTASYNC_SUCCESS) res.error = "MQTTAsync_connect: " + std::to_string(rc);
    MQTTAsync_destroy(&client);
    return res;
  }
  std::string payload;
  const int64_t start = NowUs();
  const int64_t deadline = start + o.timeout_us;
  for (uint64_t seq = 1; seq <= o.count; ++seq) {
    {
      std::unique_lock<std::mutex> lk(state.mu);
      if (!state.cv.wait_until(lk, std::chrono::steady_clock::now() + std::chrono::microseconds(std::max<int64_t>(0, deadline - NowUs())),
                               [&] { return state.lost || res.sent - state.acked < o.window; })) {
        res.error = "timed out";
        break;
      }
      if (state.lost) {
        res.error = "connection lost";
        break;
      }
    }
    char head[160];
    std::snprintf(head, sizeof(head),
                  "{\"agent\":\"bench\",\"seq\":%llu,\"sensor\":\"bench.pub\",\"ts_us\":%lld,"
                  "\"value\":21.5,\"unit\":\"C\",\"quality\":\"good\"",
                  static_cast<unsigned long long>(seq), 1764075600000000LL + static_cast<long long>(seq));
    payload = head;
    if (payload.size() + 1 < o.payload_size) payload.append(o.payload_size - payload.size() - 1, ' ');
    payload += '}';
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = const_cast<char*>(payload.data());
    msg.payloadlen = static_cast<int>(payload.size());
    msg.qos = o.qos;
    rc = MQTTAsync_sendMessage(client, o.topic.c_str(), &msg, nullptr);
    if (rc != MQTTASYNC_SUCCESS) {
      res.error = "MQTTAsync_sendMessage: " + std::to_string(rc);
      break;
    }
    res.sent++;
  }
  {
    std::unique_lock<std::mutex> lk(state.mu);
    state.cv.wait_until(lk, std::chrono::steady_clock::now() + std::chrono::microseconds(std::max<int64_t>(0, deadline - NowUs())),
                        [&] { return state.lost || state.acked >= res.sent; });
    res.acked = state.acked;
    res.seconds = static_cast<double>((state.last_ack_us ? state.last_ack_us : NowUs()) - start) / 1e6;
  }
  if (o.qos == 0) res.acked = res.sent;
  MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
  d.timeout = 1000;
  MQTTAsync_disconnect(client, &d);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  MQTTAsync_destroy(&client);
  res.ok = res.error.empty() && res.acked == o.count;
  if (res.error.empty() && !res.ok) res.error = "not every message was acknowledged";
  return res;
}

int PublishWorkerMain(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: sluice-bench _publish URL COUNT SIZE WINDOW TOPIC\n");
    return 2;
  }
  PublishOptions o;
  o.url = argv[2];
  o.count = std::strtoull(argv[3], nullptr, 10);
  o.payload_size = std::strtoull(argv[4], nullptr, 10);
  o.window = std::max<size_t>(1, std::strtoull(argv[5], nullptr, 10));
  o.topic = argv[6];
  o.client_id = "bench-pub-" + std::to_string(::getpid());
  PublishResult r = PublishMessages(o);
  std::printf("publish sent=%llu acked=%llu seconds=%.6f ok=%d error=%s\n",
              static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.acked),
              r.seconds, r.ok ? 1 : 0, r.error.c_str());
  std::fflush(stdout);
  return r.ok ? 0 : 1;
}

}  // namespace bench
}  // namespace sluice
