#include "agent/uplink/uplink.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "common/backoff.h"
#include "common/event.h"
#include "common/log.h"
#include "common/mqtt_text.h"
#include "common/redact_url.h"

namespace sluice {
namespace {

constexpr const char* kLog = "uplink";
// Tag of status messages (online/offline): their acks move no cursor.
constexpr uint64_t kStatusTag = ~0ull;
// How long the publishing loop waits for a commit or an ack before it looks
// at stop / connection loss again.
constexpr int64_t kPollUs = 50000;
// Payload bytes in flight, besides the max_inflight count. Paho keeps a copy
// of every unacknowledged message (and the transport may keep it across a
// reconnect), so 256 flatbuffers batches of ~18 KB would pin ~4.6 MB. One
// message is always allowed, however large. 1 MiB still keeps dozens of
// batches in flight: far more than a link needs to stay busy.
constexpr uint64_t kMaxInflightBytes = 1 << 20;
// "connected" and "lost" lines: at most one of each per interval, so a
// broker that accepts and drops every connection cannot flood the journal
// (the suppressed ones are counted in the next line; stats always tell).
constexpr int64_t kLinkLogIntervalUs = 10 * 1000000ll;

}  // namespace

Uplink::Uplink(const UplinkOptions& options, std::string agent_id, size_t ring_index,
               Ring& ring, Clock& clock, TransportFactory factory)
    : options_(options),
      agent_(std::move(agent_id)),
      index_(ring_index),
      ring_(ring),
      clock_(clock),
      up_log_(LogLevel::kInfo, kLog, kLinkLogIntervalUs, clock),
      down_log_(LogLevel::kWarn, kLog, kLinkLogIntervalUs, clock),
      factory_(factory                                   ? std::move(factory)
               : options.client == MqttClient::kPaho ? TransportFactory(NewPahoTransport)
                                                    : TransportFactory(NewMosquittoTransport)) {
  stats_.name = options_.name;
  stats_.url = RedactUrl(options_.url);
}

Uplink::~Uplink() {
  Stop(0);
  transport_.reset();  // its late callbacks still find this object whole
}

Status Uplink::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return Internal("uplink " + options_.name + " started twice");
  }
  auto topic = TopicTemplate::Parse(options_.topic);
  if (!topic.ok()) return InvalidArgument("upstream " + options_.name + ": topic: " + topic.status().message());
  auto alert = TopicTemplate::Parse(options_.alert_topic);
  if (!alert.ok()) return InvalidArgument("upstream " + options_.name + ": alert_topic: " + alert.status().message());
  auto status = TopicTemplate::Parse(options_.status_topic);
  if (!status.ok()) return InvalidArgument("upstream " + options_.name + ": status_topic: " + status.status().message());
  if (status->varies()) {
    return InvalidArgument("upstream " + options_.name + ": status_topic may only use {agent}");
  }
  if (options_.qos < 0 || options_.qos > 1) {
    return InvalidArgument("upstream " + options_.name + ": qos must be 0 or 1");
  }
  topic_ = std::move(*topic);
  alert_topic_ = std::move(*alert);
  status->Expand(agent_, "", "", &status_topic_);

  TransportOptions to;
  to.broker = options_.broker;
  to.client_id = options_.client_id.empty() ? agent_ : options_.client_id;
  to.username = options_.username;
  if (!options_.password_file.empty()) {
    auto pw = ReadPasswordFile(options_.password_file);
    if (!pw.ok()) return InvalidArgument("upstream " + options_.name + ": " + pw.status().message());
    to.password = std::move(*pw);
  }
  to.tls.ca_file = options_.tls_ca_file;
  to.tls.cert_file = options_.tls_cert_file;
  to.tls.key_file = options_.tls_key_file;
  to.tls.verify = options_.tls_verify;
  to.keepalive_s = options_.keepalive_s;
  to.connect_timeout_us = options_.connect_timeout_us;
  to.max_inflight = std::max<size_t>(1, options_.max_inflight);
  to.will_topic = status_topic_;
  to.will_payload = "offline";
  auto transport = factory_(to, this);
  if (!transport.ok()) {
    return Status(transport.status().code(),
                  "upstream " + options_.name + ": " + transport.status().message());
  }
  auto reader = ring_.NewReader();
  if (!reader.ok()) return reader.status();
  transport_ = std::move(*transport);
  reader_ = std::move(*reader);
  if (options_.format == PayloadFormat::kFlatbuffers) {
    batch_ = std::make_unique<BatchEncoder>(agent_);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    acked_seq_ = ring_.Cursor(index_);
    started_ = true;
    stats_.since_us = clock_.NowMonotonicUs();
  }
  rate_time_us_ = clock_.NowMonotonicUs();
  thread_ = std::thread(&Uplink::Run, this);
  return Status::Ok();
}

void Uplink::Stop(int64_t grace_us) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_) return;
    if (!stop_) {
      stop_ = true;
      stop_grace_us_ = grace_us;
    }
  }
  cv_.notify_all();
  // Serialises concurrent Stop() calls around the join.
  std::lock_guard<std::mutex> join_lock(join_mu_);
  if (thread_.joinable()) thread_.join();
}

UplinkStats Uplink::Stats() const {
  UplinkStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = stats_;
    s.acked_seq = acked_seq_;
  }
  // What the ring still holds above the cursor: seqs evicted (or skipped
  // as possibly lost) before they were sent are not backlog.
  const RingStats r = ring_.Stats();
  s.backlog = r.last_seq > s.acked_seq ? r.last_seq - s.acked_seq : 0;
  s.backlog = std::min<uint64_t>(s.backlog, r.events);
  if (r.first_seq > s.acked_seq) s.backlog = r.events;
  return s;
}

void Uplink::OnConnectionLost(const std::string& cause) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    lost_ = true;
    lost_cause_ = cause;
  }
  cv_.notify_all();
}

void Uplink::OnPublishAcked(uint64_t tag) {
  uint64_t advanced_to = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // A PUBACK came from the broker (QoS 0 "acks" are local hand-offs;
    // status messages go at QoS 1).
    if (tag == kStatusTag || options_.qos > 0) ++acks_heard_;
    if (tag == kStatusTag || tag <= acked_seq_) return;
    auto it = std::lower_bound(inflight_.begin(), inflight_.end(), tag,
                               [](const InFlight& f, uint64_t t) { return f.last_seq < t; });
    if (it == inflight_.end() || it->last_seq != tag) return;  // an earlier session's
    it->acked = true;
    inflight_bytes_ -= it->bytes;
    while (!inflight_.empty() && inflight_.front().acked) {
      acked_seq_ = inflight_.front().last_seq;
      stats_.acked_events += inflight_.front().events;
      inflight_.pop_front();
      advanced_to = acked_seq_;
    }
  }
  if (advanced_to != 0) {
    ring_.Ack(index_, advanced_to);  // only moves forward, so order is moot
    cv_.notify_all();
  }
}

void Uplink::SetError(const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.last_error = error;
}

void Uplink::SleepUs(int64_t us) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::microseconds(us), [this] { return stop_; });
}

void Uplink::UpdateRates() {
  const int64_t now = clock_.NowMonotonicUs();
  const int64_t dt = now - rate_time_us_;
  if (dt < 1000000) return;
  std::lock_guard<std::mutex> lock(mu_);
  stats_.send_rate = static_cast<double>(stats_.sent_events - rate_sent_) * 1e6 / dt;
  stats_.ack_rate = static_cast<double>(stats_.acked_events - rate_acked_) * 1e6 / dt;
  rate_sent_ = stats_.sent_events;
  rate_acked_ = stats_.acked_events;
  rate_time_us_ = now;
}

void Uplink::Run() {
  // Reset only by a connection that stayed up kStableConnectionUs: one that
  // is accepted and dropped at once counts as a failed attempt.
  ReconnectBackoff backoff(std::max<int64_t>(1000, options_.reconnect_min_us),
                           std::max<int64_t>(options_.reconnect_min_us, options_.reconnect_max_us),
                           clock_);
  const std::string url = RedactUrl(options_.url);
  bool ever_connected = false;
  std::string last_logged;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
      lost_ = false;
      lost_cause_.clear();
    }
    bool resumed = false;
    Status st = transport_->Connect(&resumed);
    if (!st.ok()) {
      const int64_t delay = backoff.NextDelayUs();
      {
        std::lock_guard<std::mutex> lock(mu_);
        stats_.connect_failures++;
        stats_.last_error = st.message();
      }
      const int n = backoff.failures();
      if (st.message() != last_logged || (n & (n - 1)) == 0) {
        LogWarn(kLog, options_.name + ": " + st.message() + "; retrying in " +
                          std::to_string(delay / 1000) + "ms (attempt " + std::to_string(n) + ")");
        last_logged = st.message();
      }
      SleepUs(delay);
      continue;
    }
    backoff.Connected();
    last_logged.clear();
    const int64_t connected_at = clock_.NowMonotonicUs();
    up_log_.Log(options_.name + ": connected to " + url);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.connected = true;
      stats_.since_us = clock_.NowMonotonicUs();
      if (ever_connected) stats_.reconnects++;
      watchdog_.Connected(stats_.since_us);
      acks_noted_ = acks_heard_;
      if (!resumed) {  // the transport dropped them: resend from the cursor
        inflight_.clear();
        inflight_bytes_ = 0;
        read_after_ = acked_seq_;
      }
    }
    ever_connected = true;
    if (!resumed) {
      pending_.clear();
      pending_pos_ = 0;
    }

    std::string why;
    Status online = transport_->Publish(status_topic_, "online", 6, 1, true, kStatusTag);
    if (online.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.publishes++;
      why = "";
    } else {
      why = "publish online: " + online.message();
    }
    if (why.empty()) why = Session();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.connected = false;
      stats_.since_us = clock_.NowMonotonicUs();
      if (!why.empty()) {
        stats_.last_error = why;
        stats_.last_disconnect_reason = why;
      }
    }
    if (why.empty()) {  // Stop()
      int64_t grace;
      {
        std::lock_guard<std::mutex> lock(mu_);
        grace = stop_grace_us_;
      }
      Drain(grace);
      Status off = transport_->Publish(status_topic_, "offline", 7, 1, true, kStatusTag);
      if (!off.ok()) LogDebug(kLog, options_.name + ": publish offline: " + off.message());
      transport_->Disconnect(std::clamp<int64_t>(grace, 200000, 1000000));
      LogInfo(kLog, options_.name + ": disconnected");
      break;
    }
    const int64_t up_ms = (clock_.NowMonotonicUs() - connected_at) / 1000;
    down_log_.Log(options_.name + ": connection to " + url + " lost after " +
                  std::to_string(up_ms) + " ms: " + why);
    transport_->Disconnect(0);
    SleepUs(backoff.NextDelayUs());
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.connected = false;
}

std::string Uplink::Session() {
  const size_t window = std::max<size_t>(1, options_.max_inflight);
  for (;;) {
    UpdateRates();
    if (std::string silent = CheckLink(clock_.NowMonotonicUs()); !silent.empty()) return silent;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_) return "";
      if (lost_) return lost_cause_.empty() ? "connection lost" : lost_cause_;
      // inflight_bytes_ > 0 implies an unacked message: one always goes.
      if (inflight_.size() >= window || inflight_bytes_ >= kMaxInflightBytes) {
        cv_.wait_for(lock, std::chrono::microseconds(kPollUs), [&] {
          return stop_ || lost_ ||
                 (inflight_.size() < window && inflight_bytes_ < kMaxInflightBytes);
        });
        continue;
      }
    }
    const size_t available = pending_.size() - pending_pos_;
    const size_t want = batch_ ? options_.batch_max_events : 1;
    if (available < want && !Refill()) return "ring read failed";
    if (pending_pos_ >= pending_.size()) {
      ring_.WaitForCommit(read_after_, kPollUs);
      continue;
    }
    std::string error;
    if (!PublishNext(&error)) return error;
  }
}

std::string Uplink::CheckLink(int64_t now) {
  const int64_t transport_silence = transport_->InboundSilenceUs();
  std::lock_guard<std::mutex> lock(mu_);
  if (acks_heard_ != acks_noted_) {
    acks_noted_ = acks_heard_;
    watchdog_.Heard(now);
  }
  const bool waiting = options_.qos > 0 && !inflight_.empty();
  const int64_t silent = watchdog_.SilentUs(now, transport_silence, waiting);
  return watchdog_.Expired(silent) ? watchdog_.Reason(silent) : std::string();
}

bool Uplink::Refill() {
  if (pending_pos_ > 0) {
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(pending_pos_));
    pending_pos_ = 0;
  }
  const size_t chunk =
      batch_ ? std::max<size_t>(256, 2 * options_.batch_max_events)
             : std::clamp<size_t>(options_.max_inflight, 64, 1024);
  if (pending_.size() >= chunk) return true;
  Status st = reader_->ReadAfter(read_after_, chunk - pending_.size(), &pending_);
  if (!st.ok()) {
    LogError(kLog, options_.name + ": ring read: " + st.ToString());
    SetError("ring read: " + st.message());
    return false;
  }
  if (!pending_.empty()) read_after_ = std::max(read_after_, pending_.back().seq);
  return true;
}

bool Uplink::PublishNext(std::string* error) {
  const size_t start = pending_pos_;
  const bool ok = batch_ ? PublishBatch(error) : PublishJson(pending_[pending_pos_++], error);
  // Not handed over: it goes first after the reconnect (which may keep
  // pending_ when the transport resumes).
  if (!ok) pending_pos_ = start;
  return ok;
}

bool Uplink::PublishJson(const StoredEvent& e, std::string* error) {
  Status st = EventToJson(agent_, e, &payload_);
  if (!st.ok()) {
    LogError(kLog, options_.name + ": skipping seq " + std::to_string(e.seq) + ": " + st.message());
    std::lock_guard<std::mutex> lock(mu_);
    stats_.corrupt_skipped++;
    return true;
  }
  if (e.kind == static_cast<int>(EventKind::kAlert)) {
    alert_topic_.Expand(agent_, e.sensor, e.sensor, &topic_buf_);
  } else {
    topic_.Expand(agent_, e.sensor, "", &topic_buf_);
  }
  {
    // Registered before Publish: the ack may arrive before Publish returns.
    std::lock_guard<std::mutex> lock(mu_);
    if (inflight_.empty()) watchdog_.StartedWaiting(clock_.NowMonotonicUs());
    inflight_.push_back({e.seq, 1, static_cast<uint32_t>(payload_.size()), false});
    inflight_bytes_ += payload_.size();
  }
  st = transport_->Publish(topic_buf_, payload_.data(), payload_.size(), options_.qos, false,
                           e.seq);
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!inflight_.empty() && inflight_.back().last_seq == e.seq) {
      inflight_bytes_ -= inflight_.back().bytes;
      inflight_.pop_back();
    }
    *error = "publish: " + st.message();
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.sent_events++;
    stats_.publishes++;
  }
  return true;
}

bool Uplink::PublishBatch(std::string* error) {
  batch_->Clear();
  size_t corrupt = 0;
  while (pending_pos_ < pending_.size() && batch_->count() < options_.batch_max_events) {
    const StoredEvent& e = pending_[pending_pos_++];
    if (!batch_->Add(e).ok()) {
      LogError(kLog, options_.name + ": skipping seq " + std::to_string(e.seq) +
                         ": body is not a valid Event");
      ++corrupt;
    }
  }
  if (corrupt > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.corrupt_skipped += corrupt;
  }
  if (batch_->count() == 0) return true;
  batch_->Finish();
  topic_.Expand(agent_, "batch", "batch", &topic_buf_);
  const uint64_t tag = batch_->last_seq();
  const auto events = static_cast<uint32_t>(batch_->count());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (inflight_.empty()) watchdog_.StartedWaiting(clock_.NowMonotonicUs());
    inflight_.push_back({tag, events, static_cast<uint32_t>(batch_->size()), false});
    inflight_bytes_ += batch_->size();
  }
  Status st = transport_->Publish(topic_buf_, batch_->data(), batch_->size(), options_.qos,
                                  false, tag);
  if (!st.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!inflight_.empty() && inflight_.back().last_seq == tag) {
      inflight_bytes_ -= inflight_.back().bytes;
      inflight_.pop_back();
    }
    *error = "publish: " + st.message();
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.sent_events += events;
    stats_.publishes++;
  }
  return true;
}

void Uplink::Drain(int64_t grace_us) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(0, grace_us)),
               [this] { return inflight_.empty() || lost_; });
}

}  // namespace sluice
