// The daemon's operational side: the control socket and its commands, the
// status snapshot, the secret-file permission check.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "agent/daemon/daemon.h"
#include "agent/daemon/rules_runner.h"
#include "agent/uplink/uplink.h"
#include "common/json.h"
#include "common/log.h"
#include "common/units.h"
#include "drivers/mqtt.h"

namespace sluice {
namespace {

const char* DurabilityName(Durability d) {
  switch (d) {
    case Durability::kOff:
      return "off";
    case Durability::kFull:
      return "full";
    default:
      return "normal";
  }
}

void WarnIfOthersRead(const std::string& what, const std::string& path) {
  struct stat st;
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return;
  if ((st.st_mode & (S_IROTH | S_IWOTH)) == 0) return;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  LogWarn("agent", what + " " + path + " is readable by others (mode " + mode +
                       "); restrict it: chmod o-rwx " + path);
}

}  // namespace

void Daemon::CheckSecretFiles() const {
  for (const UplinkOptions& u : config_.upstreams) {
    WarnIfOthersRead("upstream \"" + u.name + "\": password_file", u.password_file);
    WarnIfOthersRead("upstream \"" + u.name + "\": tls key_file", u.tls_key_file);
  }
}

Status Daemon::StartControl() {
  ControlServerOptions o;
  o.socket_path = config_.agent.control_socket;
  o.metrics_host = config_.agent.metrics_host;
  o.metrics_port = config_.agent.metrics_port;
  if (!o.metrics_host.empty() && !config_.agent.metrics_loopback) {
    LogWarn("control", "metrics_listen " + config_.agent.metrics_listen +
                           " is not a loopback address: /metrics is open to the network "
                           "without authentication");
  }
  auto server = ControlServer::Start(
      o, [this](const std::string& cmd, const JsonValue&) { return HandleControl(cmd); },
      [this] {
        if (!serving_.load(std::memory_order_acquire)) return std::string("# starting\n");
        return PrometheusText(Snapshot());
      });
  if (!server.ok()) return server.status();
  control_ = std::move(*server);
  std::string http;
  if (control_->metrics_port()) {
    bool v6 = o.metrics_host.find(':') != std::string::npos;
    http = ", metrics on http://" + (v6 ? "[" + o.metrics_host + "]" : o.metrics_host) + ":" +
           std::to_string(control_->metrics_port()) + "/metrics";
  }
  LogInfo("control", "control socket " + o.socket_path + http);
  return Status::Ok();
}

StatusOr<std::string> Daemon::HandleControl(const std::string& cmd) {
  if (cmd == "ping") return std::string("{\"ok\":true}");
  if (cmd == "version") {
    return "{\"ok\":true,\"version\":" + JsonString(SLUICE_VERSION) +
           ",\"agent\":" + JsonString(config_.agent.id) + "}";
  }
  if (cmd != "status" && cmd != "metrics") {
    return InvalidArgument("unknown command \"" + cmd + "\" (status, metrics, ping, version)");
  }
  if (!serving_.load(std::memory_order_acquire))
    return Unavailable("starting up, try again in a moment");
  DaemonSnapshot snap = Snapshot();
  if (cmd == "status") return StatusJson(snap);
  return "{\"ok\":true,\"text\":" + JsonString(PrometheusText(snap)) + "}";
}

DaemonSnapshot Daemon::Snapshot() {
  DaemonSnapshot s;
  s.agent_id = config_.agent.id;
  s.version = SLUICE_VERSION;
  s.pid = static_cast<int64_t>(::getpid());
  s.now_us = clock_.NowWallUs();
  s.started_us = started_wall_us_;
  int64_t now_mono = clock_.NowMonotonicUs();
  s.uptime_us = now_mono - started_mono_us_;
  s.sensors = scheduler_->Statuses();
  for (const SensorStatus& st : s.sensors) {
    std::string unit;
    for (const SensorSpec& spec : specs_) {
      if (spec.name == st.name) unit = spec.unit;
    }
    s.sensor_units.push_back(unit);
  }
  // What the drivers report themselves: active sensors (mqtt) beside the
  // polled ones, listeners (push).
  for (size_t i = 0; i < drivers_.size() && i < specs_.size(); ++i) {
    DriverStatus r = drivers_[i]->Report();
    if (r.role == DriverStatus::Role::kSensor) {
      r.sensor.name = specs_[i].name;
      r.sensor.driver = specs_[i].driver;
      s.sensors.push_back(std::move(r.sensor));
      s.sensor_units.push_back(specs_[i].unit);
    } else if (r.role == DriverStatus::Role::kListener) {
      s.listeners.push_back({specs_[i].name, specs_[i].driver, std::move(r.fields)});
    }
  }
  s.ring = ring_->Stats();
  s.durability = DurabilityName(config_.buffer.durability);
  s.max_events = config_.buffer.max_events;
  s.max_bytes = config_.buffer.max_bytes;
  s.ingest_rate = ingest_rate_.load();
  s.storage_bytes_written = ProcessStorageBytesWritten();
  if (!status_reader_) {
    auto r = ring_->NewReader();
    if (r.ok()) status_reader_ = std::move(*r);
  }
  std::vector<StoredEvent> oldest;
  for (size_t i = 0; i < uplinks_.size(); ++i) {
    UpstreamSnapshot u;
    u.stats = uplinks_[i]->Stats();
    if (!u.stats.connected) u.stats.send_rate = u.stats.ack_rate = 0;
    u.since_wall_us = u.stats.since_us ? s.now_us - (now_mono - u.stats.since_us) : 0;
    if (i < s.ring.upstreams.size()) u.evicted_unsent = s.ring.upstreams[i].evicted_unsent;
    oldest.clear();
    if (u.stats.backlog > 0 && status_reader_ &&
        status_reader_->ReadAfter(u.stats.acked_seq, 1, &oldest).ok() && !oldest.empty()) {
      u.oldest_unacked_ts_us = oldest[0].ts_us;
    }
    s.upstreams.push_back(std::move(u));
  }
  EstimateDrain(&s);
  s.rules_enabled = runner_ != nullptr;
  s.healthy = PartsHealthy(s.ring.writer_idle_us);
  if (!s.healthy) {
    s.unhealthy_reason = s.ring.writer_idle_us < 0 ? "the buffer writer stopped"
                         : s.ring.writer_idle_us >= kWriterStallUs
                             ? "a commit has been stuck for " +
                                   std::to_string(s.ring.writer_idle_us / 1000000) + " s"
                             : "the rules thread stopped";
  } else if (s.ring.commit_failing_since_us != 0) {
    // Liveness still earns the watchdog's ping (a restart would lose what
    // is held), but the daemon is not healthy.
    s.healthy = false;
    s.unhealthy_reason = "commits failing since " +
                         FormatUtc(s.ring.commit_failing_since_us, false) + ", holding " +
                         std::to_string(s.ring.held_events) +
                         " events: " + s.ring.last_commit_error;
  }
  if (runner_) s.rules = runner_->Stats();
  s.control = control_->stats();
  return s;
}

}  // namespace sluice
