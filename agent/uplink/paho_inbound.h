// When a Paho connection last heard from its broker. Paho C reports no
// packet it receives to the application (no PINGRESP, no PUBACK of a
// message it retries), but its protocol trace names each one:
// "... <socket> <client id> <- PINGRESP". One process-wide trace callback
// (Paho has a single one) notes, per client id, when the last packet
// arrived, so that the uplink's link watchdog (agent/uplink/link_watchdog.h)
// holds a Paho connection to 1.5 x keepalive like a libmosquitto one, idle
// or not. Two connections with the same client id in one process (two
// upstreams left at the default client_id) share one entry: either one's
// packets count for both, which can only make the watchdog slower, never
// drop a live link. Thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace sluice {
namespace paho_inbound {

// Installs the trace callback (once; later calls do nothing). Only with
// the Paho transport built in.
void Install();

// Monotonic µs (steady clock) of the last packet received by a connection
// of `client_id` at or after `since_us`; -1 if none.
int64_t LastReceivedUs(const std::string& client_id, int64_t since_us);

// Notes one trace line at `now_us`, as the callback does (tests).
void NoteTraceLine(const char* line, int64_t now_us);

// The steady clock in µs, as LastReceivedUs counts it.
int64_t NowUs();

}  // namespace paho_inbound
}  // namespace sluice
