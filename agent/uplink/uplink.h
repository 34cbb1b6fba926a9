// One uplink per [[upstream]]: forwards the ring's committed events to one
// MQTT broker, in seq order, from the upstream's own cursor.
//
// Its own thread connects (a broker down at start is normal: capped,
// jittered exponential backoff between attempts; a connection resets the
// backoff only once it has stayed up kStableConnectionUs, 30 s, so a broker
// that accepts and drops every connection is redialled ever more slowly;
// "connected"/"lost" lines are rate limited), publishes retained
// `online` on status_topic (the will publishes retained `offline`), then
// reads the ring through its own RingReader and publishes with at most
// max_inflight messages (json: one event each; flatbuffers: one batch each)
// and at most about 1 MiB of payload (kMaxInflightBytes) in flight. A PUBACK (QoS 0: the hand-off to the socket) marks a message
// acknowledged; the ring cursor (Ring::Ack) advances only over the
// contiguous acknowledged prefix of what was sent. After a lost connection
// a transport that kept what was in flight (Transport::Connect sets
// *resumed) delivers it, in order, before anything new; otherwise (both the
// libmosquitto and the Paho transports today) everything unacknowledged is sent again from the cursor. Either way an
// upstream sees duplicates (at most max_inflight messages' worth per
// reconnect), never a gap.
//
// A connection that goes silent without closing (blackholed, half-open, or
// stalled mid-packet) is dropped and redialled like a lost one once the
// broker has said nothing for 1.5 x keepalive (LinkWatchdog says exactly
// what counts); Stats().last_disconnect_reason tells why a connection ended.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/payload/payload.h"
#include "agent/uplink/link_watchdog.h"
#include "agent/uplink/topic.h"
#include "agent/uplink/transport.h"
#include "agent/uplink/uplink_options.h"
#include "buffer/ring.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/status.h"

namespace sluice {

// Makes the transport of an uplink (tests inject one with other options).
using TransportFactory = std::function<StatusOr<std::unique_ptr<Transport>>(
    const TransportOptions&, TransportListener*)>;

// A snapshot for `sluice status` and metrics.
struct UplinkStats {
  std::string name;
  std::string url;               // credentials redacted
  bool connected = false;
  int64_t since_us = 0;          // monotonic time of the last (dis)connect
  uint64_t acked_seq = 0;        // every seq <= this is acknowledged
  uint64_t backlog = 0;          // ring.LastSeq() - acked_seq (approximate)
  uint64_t sent_events = 0;      // events published (incl. resends)
  uint64_t acked_events = 0;     // events acknowledged
  uint64_t publishes = 0;        // MQTT messages published (incl. status)
  uint64_t reconnects = 0;       // successful connects after the first
  uint64_t connect_failures = 0;
  uint64_t corrupt_skipped = 0;  // events whose body failed to decode
  double send_rate = 0;          // events/s, over the last second or so
  double ack_rate = 0;           // events/s
  std::string last_error;
  // Why the last established connection ended ("" while none did): the
  // transport's reason, or the silent-link watchdog's "no reply from broker
  // for 15.0 s (keepalive 10 s)".
  std::string last_disconnect_reason;
};

class Uplink final : private TransportListener {
 public:
  // `options` is copied. `ring_index` is the upstream's position in
  // RingOptions::upstreams. `ring` and `clock` must outlive the uplink.
  // `factory` defaults to the transport options.client names
  // (NewMosquittoTransport or NewPahoTransport).
  Uplink(const UplinkOptions& options, std::string agent_id, size_t ring_index, Ring& ring,
         Clock& clock, TransportFactory factory = nullptr);
  ~Uplink() override;  // Stop(0) if still running
  Uplink(const Uplink&) = delete;
  Uplink& operator=(const Uplink&) = delete;

  // Validates the topics and URL, reads password_file, opens a RingReader,
  // creates the transport and starts the thread (which connects). Errors
  // leave nothing running. Call once.
  Status Start();

  // Stops reading new events, waits up to grace_us for in-flight
  // acknowledgements, publishes retained `offline` on status_topic and
  // disconnects; joins the thread. Idempotent. Thread-safe.
  void Stop(int64_t grace_us);

  // Thread-safe.
  UplinkStats Stats() const;
  const std::string& name() const { return options_.name; }

 private:
  // A message in flight: it covers the events (prev, last_seq].
  struct InFlight {
    uint64_t last_seq;
    uint32_t events;
    uint32_t bytes;  // payload size; counted in inflight_bytes_ until acked
    bool acked;
  };

  // TransportListener (transport threads).
  void OnConnectionLost(const std::string& cause) override;
  void OnPublishAcked(uint64_t tag) override;

  void Run();
  // Connected: publishes until the connection drops or Stop(). Returns the
  // reason the session ended ("" on stop).
  std::string Session();
  // The silent-link watchdog (LinkWatchdog): the reason to drop the
  // connection, or "".
  std::string CheckLink(int64_t now);
  // Publishes the next message from pending_; false on a transport error
  // (sets *error).
  bool PublishNext(std::string* error);
  bool PublishJson(const StoredEvent& e, std::string* error);
  bool PublishBatch(std::string* error);
  // Refills pending_ from the ring (non-blocking). Returns false on a read
  // error (logged).
  bool Refill();
  void Drain(int64_t grace_us);  // waits for in-flight acks (stop path)
  void SetError(const std::string& error);
  void UpdateRates();
  // Waits on cv_ up to us, or until stop / loss. Returns early on stop.
  void SleepUs(int64_t us);

  const UplinkOptions options_;
  const std::string agent_;
  const size_t index_;
  Ring& ring_;
  Clock& clock_;
  RateLimitedLog up_log_;    // "connected"
  RateLimitedLog down_log_;  // "lost"
  TransportFactory factory_;
  TopicTemplate topic_;
  TopicTemplate alert_topic_;
  std::string status_topic_;

  // Uplink thread only.
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<RingReader> reader_;
  std::vector<StoredEvent> pending_;  // read but not yet published
  size_t pending_pos_ = 0;
  uint64_t read_after_ = 0;           // highest seq read from the ring
  std::string payload_;
  std::string topic_buf_;
  std::unique_ptr<BatchEncoder> batch_;
  std::thread thread_;
  std::mutex join_mu_;  // one Stop() joins thread_ at a time
  int64_t rate_time_us_ = 0;
  uint64_t rate_sent_ = 0;
  uint64_t rate_acked_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;         // acks, loss, stop
  bool started_ = false;
  bool stop_ = false;
  int64_t stop_grace_us_ = 0;
  bool lost_ = false;
  std::string lost_cause_;
  std::deque<InFlight> inflight_;      // send order == seq order
  uint64_t inflight_bytes_ = 0;        // payload bytes sent, not yet acked
  uint64_t acked_seq_ = 0;             // contiguous acknowledged prefix
  LinkWatchdog watchdog_{options_.keepalive_s};
  uint64_t acks_heard_ = 0;            // acks that came from the broker
  uint64_t acks_noted_ = 0;            // acks_heard_ at the last CheckLink
  UplinkStats stats_;
};

}  // namespace sluice
