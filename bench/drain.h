// Internal to `sluice-bench drain`: one measured drain and its report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/broker.h"
#include "bench/mqtt.h"

namespace sluice {
namespace bench {

// One drain: time from the start of the draining process (sluiced, the
// Paho publisher, broker A for the bridge) to the last expected event
// arriving at the counting subscriber.
struct DrainFigure {
  bool ok = false;          // every event arrived
  std::string error;
  uint64_t events = 0;      // expected
  double seconds = 0;       // start .. last expected arrival
  double first_arrival_s = 0;
  uint64_t messages = 0;    // counted messages (batches for flatbuffers)
  CountResult count;
  double drainer_cpu_s = 0;      // CPU of the process doing the work
  int64_t drainer_peak_rss_kib = 0;
  double broker_cpu_s = 0;       // target broker A
  double subscriber_cpu_s = 0;   // this process (the counting subscriber)
  double extra_s = 0;            // bridge: time to load B; paho: publisher's own
  int64_t extra_kib = 0;         // bridge: B's RSS once loaded
  int64_t rss_anon_kib = 0;      // sluiced just before stopping: RssAnon
  int64_t rss_file_kib = 0;      // and RssFile (mapped libraries)
  std::string threads;           // sluiced: CPU seconds per thread
  double events_per_s() const { return seconds > 0 ? events / seconds : 0; }
  double messages_per_s() const { return seconds > 0 ? messages / seconds : 0; }
  // Events over first .. last arrival: the rate without start-up time.
  double steady_events_per_s() const {
    const int64_t end = count.complete_us ? count.complete_us : count.last_us;
    return end > count.first_us ? count.distinct * 1e6 / static_cast<double>(end - count.first_us) : 0;
  }
};

struct DrainEnv {
  std::string root;       // temp root
  Broker* a = nullptr;    // target broker (persistence on)
  uint64_t n = 0;         // backlog / message count
  uint64_t bridge_n = 0;
  size_t json_size = 0;   // bytes of one JSON event as sluiced sends it
  size_t window = 256;
  int bridge_autosave = 1;
  int64_t timeout_us = 0;  // per drain
  int sub_qos = 1;         // the counting subscriber's subscription QoS
};

// Broker A's own settings (beside BaseBrokerConfig).
std::string ATargetConfig(const Broker& a);

// Plain Paho C QoS 1 publisher (a `_publish` worker process) sending n JSON
// messages of json_size bytes with `window` in flight.
DrainFigure RunPahoBaseline(const DrainEnv& env, int run);
// Mosquitto bridge B -> A draining bridge_n queued QoS 1 messages.
// Leaves A running.
DrainFigure RunBridgeBaseline(const DrainEnv& env, int run);

// Polls until the counter completes, the child dies or time runs out,
// sampling `watch`'s VmHWM into *peak_kib. True when complete.
bool WaitDrained(Counter& counter, Child* child, pid_t watch, int64_t timeout_us,
                 int64_t* peak_kib, std::string* error);

}  // namespace bench
}  // namespace sluice
