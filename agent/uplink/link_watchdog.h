// Decides when a connection that still looks open has gone silent: a
// blackholed or half-open link, or one that stalled in the middle of a
// packet, gives no FIN, no RST and no socket error. MQTT has the broker drop
// a client it has not heard from for 1.5 x keepalive; the uplink holds the
// broker to the same bound. The client libraries' own keepalive would take
// up to 2 x keepalive (a PINGREQ once keepalive has passed, then another
// keepalive for its PINGRESP), or never notice while they keep writing.
//
// Two ways to hear the broker:
// - transport_silence_us >= 0: the transport tells when the broker last
//   sent anything (libmosquitto: the socket's TCP_INFO; Paho: its protocol
//   trace, agent/uplink/paho_inbound.h). The library sends a PINGREQ once nothing
//   came for a keepalive, so a live broker is never silent for longer than
//   keepalive plus a round trip; silence >= 1.5 x keepalive is a dead link,
//   whether anything waits for an ack or not.
// - transport_silence_us < 0 (a transport that cannot tell, e.g. Paho when
//   its trace named nothing for this client id): only acknowledgements
//   count, so the watchdog runs only while a QoS 1 message waits: no ack for
//   1.5 x keepalive since the wait began or since the last ack. With nothing
//   in flight the library's own keepalive applies.
//
// Plain logic on the caller's clock; not thread-safe (the uplink holds its
// lock).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>

namespace sluice {

class LinkWatchdog {
 public:
  // keepalive_s <= 0: never fires.
  explicit LinkWatchdog(int keepalive_s)
      : keepalive_s_(keepalive_s), limit_us_(keepalive_s > 0 ? keepalive_s * 1500000ll : 0) {}

  // A connection came up at `now`.
  void Connected(int64_t now) {
    heard_us_ = now;
    waiting_since_us_ = now;
  }
  // The broker acknowledged something.
  void Heard(int64_t now) { heard_us_ = std::max(heard_us_, now); }
  // A message that wants an ack was sent while none was waiting.
  void StartedWaiting(int64_t now) { waiting_since_us_ = now; }

  // How long the broker has been silent in a way that counts (see above);
  // 0 when it does not count. `waiting`: a QoS 1 message waits for its ack.
  int64_t SilentUs(int64_t now, int64_t transport_silence_us, bool waiting) const {
    if (limit_us_ <= 0) return 0;
    if (transport_silence_us >= 0) return std::min(transport_silence_us, now - heard_us_);
    if (!waiting) return 0;
    return now - std::max(heard_us_, waiting_since_us_);
  }
  bool Expired(int64_t silent_us) const { return limit_us_ > 0 && silent_us >= limit_us_; }

  // "no reply from broker for 15.2 s (keepalive 10 s)".
  std::string Reason(int64_t silent_us) const {
    const int64_t tenths = silent_us / 100000;
    return "no reply from broker for " + std::to_string(tenths / 10) + "." +
           std::to_string(tenths % 10) + " s (keepalive " + std::to_string(keepalive_s_) + " s)";
  }

  int64_t limit_us() const { return limit_us_; }

 private:
  const int keepalive_s_;
  const int64_t limit_us_;
  int64_t heard_us_ = 0;
  int64_t waiting_since_us_ = 0;
};

}  // namespace sluice
