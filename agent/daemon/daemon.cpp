#include "agent/daemon/daemon.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include "agent/daemon/ring_sink.h"
#include "agent/daemon/rules_runner.h"
#include "agent/uplink/uplink.h"
#include "buffer/codec.h"
#include "common/log.h"
#include "common/mqtt_text.h"
#include "common/units.h"

namespace sluice {

namespace {

// Reads the params every driver takes (scale, offset, deadband,
// heartbeat) into the spec, then lets the registry build and validate the
// driver.
StatusOr<std::unique_ptr<Driver>> MakeDriver(const std::string& file, const SensorConfig& sc,
                                             DriverContext& ctx, SensorSpec* spec) {
  *spec = sc.spec;
  Params params(file, sc.spec.name, sc.params, sc.line, sc.column);
  SLUICE_RETURN_IF_ERROR(ApplyCommonParams(params, spec));
  return DriverRegistry::Builtin().Create(*spec, params, ctx);
}

// "FILE:LINE:COL" of the config key at `key_path` ("agent.data_dir"), or
// "FILE" when it is not in the file (a default).
std::string KeyWhere(const Config& c, const std::string& key_path) {
  if (c.document) {
    if (const toml::node* n = c.document->at_path(key_path).node(); n && n->source().begin.line > 0) {
      return c.path + ":" + std::to_string(n->source().begin.line) + ":" +
             std::to_string(n->source().begin.column);
    }
  }
  return c.path;
}

// What can be known about data_dir before opening the buffer, without
// creating anything: data_dir (or, if it does not exist yet, its nearest
// existing parent, where Ring::Open will create it) is a directory this
// process may create files in, on a writable file system, and the buffer's
// files in it are writable. "" if so, else what is wrong and why.
std::string DataDirProblem(const std::string& dir) {
  auto writable = [](const std::string& p) {
    return faccessat(AT_FDCWD, p.c_str(), W_OK, AT_EACCESS) == 0;
  };
  std::string existing = dir;
  struct stat st;
  while (stat(existing.c_str(), &st) != 0) {
    if (errno != ENOENT) return "cannot use " + existing + ": " + std::strerror(errno);
    while (existing.size() > 1 && existing.back() == '/') existing.pop_back();
    size_t slash = existing.find_last_of('/');
    existing = slash == std::string::npos ? "." : slash == 0 ? "/" : existing.substr(0, slash);
  }
  const bool is_dir = existing == dir;
  if (!S_ISDIR(st.st_mode)) {
    return is_dir ? dir + " is not a directory"
                  : "cannot create " + dir + ": " + existing + " is not a directory";
  }
  if (faccessat(AT_FDCWD, existing.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    const std::string why = std::strerror(errno);
    return is_dir ? dir + " is not writable: " + why
                  : "cannot create " + dir + " in " + existing + ": " + why;
  }
  if (!is_dir) return "";
  for (const char* name : {"buffer.db", "buffer.db-wal", "buffer.db-shm", "buffer.seq",
                           "rules.state"}) {
    const std::string f = dir + "/" + name;
    if (lstat(f.c_str(), &st) != 0) continue;
    if (!S_ISREG(st.st_mode)) return f + " is not a regular file";
    if (!writable(f)) return f + " is not writable: " + std::strerror(errno);
  }
  return "";
}

}  // namespace

Daemon::Daemon(Config config, Clock& clock) : config_(std::move(config)), clock_(clock) {}

Daemon::~Daemon() { Shutdown(); }

StatusOr<std::unique_ptr<Daemon>> Daemon::Create(Config config, Clock& clock) {
  std::unique_ptr<Daemon> d(new Daemon(std::move(config), clock));
  // This daemon's shared devices: its sensors share Modbus links, serial
  // ports, I2C chips and command runs with each other, never with another
  // daemon's (the drivers keep what they acquire; the registry only finds).
  SharedDevices devices;
  DriverContext ctx{clock, devices};
  // Test-only: integration tests point the file-based drivers at a fake /sys.
  if (const char* root = std::getenv("SLUICE_SYSFS_ROOT"); root != nullptr && *root != '\0') {
    ctx.sysfs_root = root;
  }
  std::string errors;
  for (const SensorConfig& sc : d->config_.sensors) {
    SensorSpec spec;
    auto driver = MakeDriver(d->config_.path, sc, ctx, &spec);
    if (!driver.ok()) {
      errors += (errors.empty() ? "" : "\n") + driver.status().message();
      continue;
    }
    d->specs_.push_back(spec);
    d->drivers_.push_back(std::move(*driver));
  }
  for (size_t i = 0; i < d->config_.upstreams.size(); ++i) {
    const UplinkOptions& u = d->config_.upstreams[i];
    if (u.password_file.empty()) continue;
    auto pw = ReadPasswordFile(u.password_file);  // as the uplink reads it at start
    if (!pw.ok()) {
      errors += (errors.empty() ? "" : "\n") +
                KeyWhere(d->config_, "upstream[" + std::to_string(i) + "].password_file") +
                ": upstream \"" + u.name + "\": " + pw.status().message();
    }
  }
  if (std::string why = DataDirProblem(d->config_.agent.data_dir); !why.empty()) {
    errors += (errors.empty() ? "" : "\n") + KeyWhere(d->config_, "agent.data_dir") +
              ": [agent] data_dir: " + why;
  }
  if (!d->config_.rules.files.empty()) {
    std::vector<std::string> warnings;
    auto set = rules::LoadRuleGlobs(d->config_.rules.files, &warnings);
    for (const std::string& w : warnings) LogWarn("rules", w);
    if (set.ok()) {
      d->rules_ = std::move(*set);
    } else {
      errors += (errors.empty() ? "" : "\n") + set.status().message();
    }
  }
  if (!errors.empty()) return InvalidArgument(errors);
  d->CheckSecretFiles();
  return d;
}

Status Daemon::Start() {
  started_wall_us_ = clock_.NowWallUs();
  started_mono_us_ = clock_.NowMonotonicUs();
  SLUICE_RETURN_IF_ERROR(StartControl());
  // Ring::Open creates data_dir (and its parents) if missing.
  RingOptions ro;
  ro.data_dir = config_.agent.data_dir;
  ro.max_events = config_.buffer.max_events;
  ro.max_bytes = config_.buffer.max_bytes;
  ro.durability = config_.buffer.durability;
  ro.commit_interval_us = config_.buffer.commit_interval_us;
  ro.sync_interval_us = config_.buffer.sync_interval_us;
  for (const UplinkOptions& u : config_.upstreams) ro.upstreams.push_back(u.name);
  auto ring = Ring::Open(ro, clock_);
  if (!ring.ok()) {
    return Status(ring.status().code(), "cannot open the buffer in data_dir " +
                                            config_.agent.data_dir + ": " + ring.status().message());
  }
  ring_ = std::move(*ring);
  RingStats rs = ring_->Stats();
  LogInfo("buffer", "opened " + config_.agent.data_dir + "/buffer.db: " +
                        std::to_string(rs.events) + " events, last seq " +
                        std::to_string(rs.last_seq));
  sink_ = std::make_unique<RingSink>(*ring_);

  if (!config_.rules.files.empty()) {
    rules::EngineOptions eo;
    eo.late_tolerance_us = config_.rules.late_tolerance_us;
    eo.max_future_us = config_.rules.max_future_us;
    size_t n = rules_.rules.size(), files = rules_.files.size();
    runner_ = std::make_unique<RulesRunner>(*ring_, clock_, eo,
                                            config_.agent.data_dir + "/rules.state");
    Status st = runner_->Start(std::move(rules_));
    if (!st.ok()) return Status(st.code(), "rules: " + st.message());
    LogInfo("rules", "running " + std::to_string(n) + " rules from " + std::to_string(files) +
                         " files");
  }

  for (size_t i = 0; i < config_.upstreams.size(); ++i) {
    auto up = std::make_unique<Uplink>(config_.upstreams[i], config_.agent.id, i, *ring_, clock_);
    Status st = up->Start();
    if (!st.ok()) return Status(st.code(), "upstream \"" + config_.upstreams[i].name + "\": " + st.message());
    uplinks_.push_back(std::move(up));
  }

  scheduler_ = std::make_unique<Scheduler>(clock_, *sink_);
  for (size_t i = 0; i < drivers_.size(); ++i) {
    Driver& d = *drivers_[i];
    if (d.polled()) {
      SLUICE_RETURN_IF_ERROR(scheduler_->Add(specs_[i], d));
    } else {
      Status st = d.Start(*sink_);
      if (!st.ok()) return Status(st.code(), "sensor \"" + specs_[i].name + "\": " + st.message());
      started_.push_back(&d);
    }
  }
  scheduler_->Start();
  started_all_ = true;
  last_log_us_ = clock_.NowMonotonicUs();
  rate_time_us_ = last_log_us_;
  rate_seq_ = ring_->LastSeq();
  serving_.store(true, std::memory_order_release);
  return Status::Ok();
}

void Daemon::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  // 0. The control socket: nobody looks at the parts while they stop.
  if (control_) control_->Stop();
  status_reader_.reset();
  // 1. Sensors: no new readings. A read blocked in the kernel (a wedged
  //    bus) is waited for up to shutdown_grace, then abandoned: what is
  //    buffered is still committed below, and main() then ends the process
  //    without destroying the drivers the read is still inside.
  if (scheduler_ && !scheduler_->StopWithin(config_.agent.shutdown_grace_us)) {
    abandoned_reads_ = true;
    LogError("drivers", "stopping: sensor reads still blocked after " +
                            FormatDuration(config_.agent.shutdown_grace_us) +
                            "; committing and exiting without them");
  }
  for (Driver* d : started_) d->Stop();
  // 2. Commit what is buffered.
  if (ring_) {
    Status st = ring_->Flush();
    if (!st.ok()) LogError("buffer", "final commit failed: " + st.message());
  }
  // 2b. The rules thread evaluates what was committed and commits its last
  //     alerts.
  if (runner_) {
    runner_->Stop(2000000);
    if (ring_) {
      Status st = ring_->Flush();
      if (!st.ok()) LogError("buffer", "committing the last alerts failed: " + st.message());
    }
  }
  // 3. Uplinks wait (together, in parallel) up to shutdown_grace for
  //    in-flight acknowledgements.
  std::vector<std::thread> stoppers;
  for (auto& u : uplinks_) {
    Uplink* up = u.get();
    int64_t grace = config_.agent.shutdown_grace_us;
    stoppers.emplace_back([up, grace] { up->Stop(grace); });
  }
  for (auto& t : stoppers) t.join();
  // Their read connections close with them, so the WAL can be truncated.
  uplinks_.clear();
  // 4. Save cursors and close.
  if (ring_) {
    Status st = ring_->Stop();
    if (!st.ok()) LogError("buffer", "closing the buffer failed: " + st.message());
  }
}

void Daemon::Reload() {
  if (!runner_) {
    LogInfo("rules", "SIGHUP: no rule files configured (rules.files), nothing to reload");
    return;
  }
  std::vector<std::string> warnings;
  auto set = rules::LoadRuleGlobs(config_.rules.files, &warnings);
  for (const std::string& w : warnings) LogWarn("rules", w);
  if (!set.ok()) {
    LogError("rules", "reload rejected, the running rules are kept:");
    std::string msg = set.status().message();
    size_t pos = 0;
    while (pos <= msg.size()) {
      size_t nl = msg.find('\n', pos);
      if (nl == std::string::npos) nl = msg.size();
      if (nl > pos) LogError("rules", msg.substr(pos, nl - pos));
      pos = nl + 1;
    }
    return;
  }
  size_t n = set->rules.size(), files = set->files.size();
  std::set<std::string> before, after;
  for (const RuleBrief& b : runner_->Stats().rules) before.insert(b.name);
  for (const rules::RuleDef& r : set->rules) after.insert(r.name);
  auto sum = runner_->Replace(std::move(*set), 10000000);
  if (!sum.ok()) {
    LogError("rules", "reload failed: " + sum.status().message());
    return;
  }
  LogInfo("rules", "reloaded " + std::to_string(n) + " rules from " + std::to_string(files) +
                       " files: kept " + std::to_string(sum->kept) + ", added " +
                       std::to_string(sum->added) + ", removed " + std::to_string(sum->removed) +
                       " (windows kept " + std::to_string(sum->windows_kept) + ", new " +
                       std::to_string(sum->windows_new) + ")");
  // By name: rules new to the set and rules gone from it.
  auto list = [](const std::set<std::string>& a, const std::set<std::string>& b) {
    std::string out;
    size_t n = 0;
    for (const std::string& x : a) {
      if (b.count(x)) continue;
      if (++n <= 10) out += (out.empty() ? "" : ", ") + x;
    }
    if (n > 10) out += " and " + std::to_string(n - 10) + " more";
    return out;
  };
  std::string added = list(after, before), removed = list(before, after);
  if (!added.empty()) LogInfo("rules", "new rules: " + added);
  if (!removed.empty()) LogInfo("rules", "removed rules: " + removed);
}

void Daemon::Tick() {
  if (!started_all_ || stopped_) return;
  int64_t now = clock_.NowMonotonicUs();
  if (now - rate_time_us_ >= 1000000) {
    uint64_t seq = ring_->LastSeq();
    double rate = static_cast<double>(seq - std::min(seq, rate_seq_)) * 1e6 /
                  static_cast<double>(now - rate_time_us_);
    ingest_rate_.store(rate);
    rate_seq_ = seq;
    rate_time_us_ = now;
  }
  if (now - last_log_us_ < 60000000) return;
  last_log_us_ = now;
  RingStats rs = ring_->Stats();
  std::string line = "buffer " + std::to_string(rs.events) + " events, seq " +
                     std::to_string(rs.first_seq) + ".." + std::to_string(rs.last_seq) +
                     ", evicted " + std::to_string(rs.evicted_total);
  for (auto& u : uplinks_) {
    UplinkStats s = u->Stats();
    line += "; " + s.name + (s.connected ? " connected" : " disconnected") + ", acked " +
            std::to_string(s.acked_seq) + ", backlog " + std::to_string(s.backlog);
  }
  if (runner_) {
    RulesRunnerStats r = runner_->Stats();
    line += "; rules " + std::to_string(r.engine.rules) + ", firing " +
            std::to_string(r.engine.firing) + ", fired " + std::to_string(r.engine.fired) +
            ", evaluated seq " + std::to_string(r.seq) + ", late " +
            std::to_string(r.engine.late) + ", future " + std::to_string(r.engine.future);
  }
  LogInfo("agent", line);
}

bool Daemon::Healthy() const {
  return started_all_ && !stopped_ && PartsHealthy(ring_->Stats().writer_idle_us);
}

bool Daemon::PartsHealthy(int64_t writer_idle_us) const {
  return writer_idle_us >= 0 && writer_idle_us < kWriterStallUs &&
         (!runner_ || runner_->Running());
}

}  // namespace sluice
