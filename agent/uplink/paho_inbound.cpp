#include "agent/uplink/paho_inbound.h"

#include "common/build_options.h"
#if SLUICE_TRANSPORT_PAHO
#include <MQTTAsync.h>
#endif

#include <chrono>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace sluice {
namespace paho_inbound {
namespace {

std::mutex& Mu() {
  static std::mutex mu;
  return mu;
}
// client id -> last packet received (µs); guarded by Mu().
std::unordered_map<std::string, int64_t>& Last() {
  static auto* last = new std::unordered_map<std::string, int64_t>();
  return *last;
}
// Bounds the table if client ids keep changing (each is a few bytes).
constexpr size_t kMaxClients = 256;

#if SLUICE_TRANSPORT_PAHO
// Paho calls this with its log mutex held: note and return.
void OnTrace(enum MQTTASYNC_TRACE_LEVELS, char* message) {
  if (message != nullptr) NoteTraceLine(message, NowUs());
}
#endif

}  // namespace

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void NoteTraceLine(const char* line, int64_t now_us) {
  // "<date> <time> <socket> <client id> <- <PACKET> ...": the token before
  // " <- " is the client id. Lines of sent packets ("->") and other traces
  // do not match.
  const char* arrow = std::strstr(line, " <- ");
  if (arrow == nullptr || arrow == line) return;
  const char* start = arrow;
  while (start > line && start[-1] != ' ') --start;
  if (start == arrow) return;
  std::string id(start, static_cast<size_t>(arrow - start));
  std::lock_guard<std::mutex> lock(Mu());
  auto& last = Last();
  if (last.size() >= kMaxClients && last.count(id) == 0) last.clear();
  int64_t& t = last[id];
  if (now_us > t) t = now_us;
}

int64_t LastReceivedUs(const std::string& client_id, int64_t since_us) {
  std::lock_guard<std::mutex> lock(Mu());
  auto it = Last().find(client_id);
  if (it == Last().end() || it->second < since_us) return -1;
  return it->second;
}

void Install() {
#if SLUICE_TRANSPORT_PAHO
  static std::once_flag once;
  std::call_once(once, [] {
    MQTTAsync_setTraceCallback(&OnTrace);
    MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_PROTOCOL);
  });
#endif
}

}  // namespace paho_inbound
}  // namespace sluice
