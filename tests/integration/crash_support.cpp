#include "tests/integration/crash_support.h"

#include <signal.h>
#include <sqlite3.h>  // test oracle: reads buffer.db read-only to check what is on disk
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>

namespace sluice {
namespace testing {
namespace {

const char* const kNames[] = {kUpstream, "edge"};
constexpr int64_t kQuietUs = 250000;  // subscribers silent this long: settled

}  // namespace

int CrashRounds(int fallback) {
  const char* s = std::getenv("SLUICE_CRASH_ROUNDS");
  return s && std::atoi(s) > 0 ? std::atoi(s) : fallback;
}

CrashRig::CrashRig(RigOptions options) : options_(std::move(options)) {}

CrashRig::~CrashRig() {
  if (daemon_.running()) Kill();
  if (steady_) steady_->Stop();
  if (burst_) burst_->Stop();
  if (paused_) broker_.Resume();
}

void CrashRig::SetUp() {
  REQUIRE(options_.upstreams >= 1);
  REQUIRE(options_.upstreams <= 2);
  std::string err;
  REQUIRE(broker_.Start(&err));
  for (int i = 0; i < options_.upstreams; ++i) {
    const std::string prefix = "u" + std::to_string(i);
    auto u = std::make_unique<Upstream>(prefix + "/" + kAgent + "/status");
    u->name = kNames[i];
    u->prefix = prefix;
    u->proxy = std::make_unique<TcpProxy>(broker_.port());
    REQUIRE(u->proxy->Start());
    Subscriber::Options so;
    so.url = broker_.url();
    so.topic_filter = prefix + "/#";
    so.auto_reconnect = true;  // RestartBroker
    u->sub = std::make_unique<Subscriber>(so);
    INFO(err);
    REQUIRE(u->sub->Start(&err));
    ups_.push_back(std::move(u));
  }
  WriteConfig("normal");
  const std::string sock = dir_.Join("push.sock");
  steady_ = std::make_unique<Pusher>(sock, "crash.s", options_.steady_rate);
  burst_ = std::make_unique<Pusher>(sock, "crash.b", options_.burst_rate);
  steady_->Pause(true);
  burst_->Pause(true);
  steady_->Start();
  burst_->Start();
  RingFile f = Read();  // a data dir the test filled before: never sent here
  for (size_t i = 0; i < ups_.size(); ++i) {
    ups_[i]->base = f.ok ? f.cursor[i] : 0;
    StopMark start;
    start.what = "start";
    start.cursor = ups_[i]->base;
    ups_[i]->marks.push_back(start);
  }
  prev_max_ = f.ok ? f.max_seq : 0;
  prev_next_ = f.ok ? f.next_seq : 0;
  prev_reserved_ = ReadSeqReservation(data_dir());
}

void CrashRig::WriteConfig(const std::string& durability) {
  ConfigSpec spec;
  spec.data_dir = data_dir();
  spec.control_socket = dir_.Join("control.sock");
  spec.durability = durability;
  spec.extra_buffer = options_.extra_buffer;
  spec.shutdown_grace = options_.shutdown_grace;
  spec.sensors = {PushSensor("ingest", "unix://" + dir_.Join("push.sock"))};
  std::string toml = spec.ToToml();
  for (const auto& u : ups_) {
    toml += "[[upstream]]\nname = \"" + u->name + "\"\n";
    toml += "url = \"mqtt://127.0.0.1:" + std::to_string(u->proxy->port()) + "\"\n";
    toml += std::string("client_id = \"") + kAgent + "-" + u->prefix + "\"\n";
    toml += "client = \"" + options_.client + "\"\n";
    toml += "topic = \"" + u->prefix + "/{agent}/{sensor}\"\n";
    toml += "alert_topic = \"" + u->prefix + "/{agent}/alerts/{rule}\"\n";
    toml += "status_topic = \"" + u->prefix + "/{agent}/status\"\n";
    toml += "qos = " + std::to_string(options_.qos) + "\nformat = \"json\"\n";
    toml += "max_inflight = " + std::to_string(options_.max_inflight) + "\n";
    toml += "reconnect_min = \"50ms\"\nreconnect_max = \"400ms\"\n\n";
  }
  REQUIRE(WriteFile(dir_.Join("sluiced.toml"), toml));
}

void CrashRig::PauseBroker() {
  broker_.Pause();
  paused_ = true;
}

void CrashRig::ResumeBroker() {
  if (!paused_) return;
  broker_.Resume();
  paused_ = false;
}

void CrashRig::RestartBroker() {
  broker_.Kill();
  paused_ = false;
  std::string err;
  INFO(err);
  REQUIRE(broker_.Start(&err));
  for (auto& u : ups_) {
    const std::string status = u->prefix + "/" + kAgent + "/status";
    bool subscribed = false;
    for (int attempt = 0; attempt < 40 && !subscribed; ++attempt) {
      const size_t before = u->sub->Count();
      RunProgram("/usr/bin/mosquitto_pub",
                 {"-p", std::to_string(broker_.port()), "-q", "1", "-t", status, "-m", "probe"},
                 dir_.path(), 5000000);
      subscribed = u->sub->WaitForCount(before + 1, 300000);
    }
    REQUIRE(subscribed);
  }
}

bool CrashRig::Launch(std::string* error) {
  REQUIRE_FALSE(daemon_.running());
  const std::string log = dir_.Join("sluiced.log");
  log_offset_ = ReadFile(log).size();
  Process::Options o;
  o.argv = SluicedArgv();
  o.argv.insert(o.argv.end(), {"--config", dir_.Join("sluiced.toml")});
  o.stderr_path = log;
  o.stdout_path = log;
  return daemon_.Start(o, error);
}

void CrashRig::Start() {
  std::string err;
  REQUIRE(Launch(&err));
  const bool serving = WaitLog("agent: serving", 30000000);
  INFO("sluiced did not start: " << RunLog());
  REQUIRE(serving);
  REQUIRE(Alive());
}

std::string CrashRig::RunLog() const {
  std::ifstream in(dir_.Join("sluiced.log"), std::ios::binary);
  in.seekg(static_cast<std::streamoff>(log_offset_));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool CrashRig::LogHas(const std::string& needle) const {
  return RunLog().find(needle) != std::string::npos;
}

bool CrashRig::WaitLog(const std::string& needle, int64_t timeout_us) {
  return WaitUntil(
      [&] {
        if (LogHas(needle)) return true;
        return !Alive();  // ended: stop waiting (the caller checks)
      },
      timeout_us, 1000) &&
         LogHas(needle);
}

bool CrashRig::Alive() { return daemon_.running() && !daemon_.Wait(0); }

void CrashRig::Signal(int sig) { daemon_.Kill(sig); }

void CrashRig::Kill() {
  if (!daemon_.running()) return;
  daemon_.Kill(SIGKILL);
  REQUIRE(daemon_.Wait(20000000));
}

std::optional<int> CrashRig::WaitExit(int64_t timeout_us) {
  if (!daemon_.running()) return daemon_.wait_status();
  return daemon_.Wait(timeout_us);
}

bool CrashRig::WaitAllSaved(int64_t timeout_us) {
  return WaitUntil(
      [&] {
        RingFile f = Read();
        return f.ok && std::all_of(f.cursor.begin(), f.cursor.end(),
                                   [&](uint64_t c) { return c + 1 == f.next_seq; });
      },
      timeout_us, 50000);
}

void CrashRig::Feed() {
  for (auto& u : ups_) {
    u->sub->WaitFor([&](const std::vector<ReceivedMessage>& m) {
      u->tracker.Feed(m);
      return true;
    }, 0);
  }
}

void CrashRig::Settle() {
  auto total = [&] {
    size_t n = 0;
    for (const auto& u : ups_) n += u->sub->Count();
    return n;
  };
  const int64_t end = MonoNowUs() + 10000000;
  size_t last = total();
  int64_t since = MonoNowUs();
  while (MonoNowUs() < end && MonoNowUs() - since < kQuietUs) {
    SleepMs(20);
    if (total() != last) {
      last = total();
      since = MonoNowUs();
    }
  }
  Feed();
}

RingFile CrashRig::Read() const {
  RingFile f;
  const std::string path = data_dir() + "/buffer.db";
  if (access(path.c_str(), F_OK) != 0) {
    f.error = "no " + path;
    return f;
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    f.error = db ? sqlite3_errmsg(db) : "open failed";
    sqlite3_close(db);
    return f;
  }
  sqlite3_busy_timeout(db, 5000);
  bool ok = true;
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  auto q = [&](const std::string& sql) { return QueryU64(db, sql.c_str(), &ok); };
  f.version = static_cast<int64_t>(q("PRAGMA user_version"));
  f.rows = q("SELECT count(*) FROM events");
  f.min_seq = q("SELECT coalesce(min(seq), 0) FROM events");
  f.max_seq = q("SELECT coalesce(max(seq), 0) FROM events");
  f.next_seq = q("SELECT value FROM meta WHERE key = 'next_seq'");
  if (f.version >= 2) {
    f.evicted_total = q("SELECT coalesce(sum(value), 0) FROM counters WHERE name = 'evicted_total'");
    f.meta_rows = static_cast<int64_t>(q("SELECT coalesce(sum(value), -1) FROM meta WHERE key = 'row_count'"));
  }
  if (f.version >= 3) f.gap_seqs = q("SELECT coalesce(sum(last_seq - first_seq + 1), 0) FROM gaps");
  for (const auto& u : ups_) {
    const std::string where = " FROM cursors WHERE upstream = '" + u->name + "'";
    f.cursor.push_back(q("SELECT acked_seq" + where));
    f.evicted_unsent.push_back(f.version >= 2 ? q("SELECT evicted_unsent" + where) : 0);
  }
  if (!ok) f.error = sqlite3_errmsg(db);
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  f.ok = ok;
  return f;
}

void CrashRig::Stopped(const std::string& what) {
  REQUIRE_FALSE(Alive());
  ResumeBroker();
  Settle();
  ++stops_;
  const RingFile f = Read();
  INFO("stop " << stops_ << " (" << what << "): " << f.error);
  REQUIRE(f.ok);
  const uint64_t reserved = ReadSeqReservation(data_dir());
  // seq never goes back; a kill on the same boot leaves nothing unsure.
  CHECK(f.max_seq >= prev_max_);
  CHECK(f.next_seq >= prev_next_);
  CHECK(reserved >= prev_reserved_);
  CHECK(reserved + 1 >= f.next_seq);
  CHECK(f.gap_seqs == 0);
  // Nothing committed lost but what was counted evicted; one run of seqs.
  if (f.rows > 0) {
    CHECK(f.max_seq + 1 == f.next_seq);
    CHECK(f.rows == f.max_seq - f.min_seq + 1);
  }
  CHECK(f.rows + f.evicted_total + f.gap_seqs + 1 == f.next_seq);
  prev_max_ = f.max_seq;
  prev_next_ = f.next_seq;
  prev_reserved_ = reserved;
  for (size_t i = 0; i < ups_.size(); ++i) {
    Upstream& u = *ups_[i];
    INFO("upstream " << u.name);
    // Everything it received was committed and is kept (or evicted).
    CHECK(u.tracker.MaxSeen() < f.next_seq);
    // The saved cursor never runs ahead of what arrived.
    const uint64_t cursor = f.cursor[i];
    CHECK(cursor < f.next_seq);
    const std::vector<uint64_t> missing = u.tracker.Missing(u.base + 1, cursor);
    if (!options_.evicting) {
      INFO(missing.size() << " seqs at or below the cursor " << cursor
                          << " never arrived, first " << (missing.empty() ? 0 : missing[0]));
      CHECK(missing.empty());
    } else {
      CHECK(missing.size() <= f.evicted_unsent[i]);
      CHECK((missing.empty() || missing.back() < f.min_seq));
    }
    StopMark m;
    m.what = what;
    m.msg = u.tracker.fed();
    m.cursor = cursor;
    m.at_risk = u.tracker.SeenAbove(cursor);
    m.accepted = u.proxy->accepted();
    u.marks.push_back(m);
  }
}

void CrashRig::Finish() {
  steady_->Pause(true);
  burst_->Pause(true);
  for (auto& u : ups_) REQUIRE(u->proxy->Restore());
  Start();
  const RingFile before = Read();
  REQUIRE(before.ok);
  const uint64_t n = before.next_seq - 1;
  // Everything arrives (but what was evicted before it was sent: with
  // eviction, everything still in the ring) and every cursor is saved.
  for (auto& u : ups_) {
    const uint64_t lo = options_.evicting ? std::max(before.min_seq, u->base + 1) : u->base + 1;
    const bool covered = u->tracker.WaitCovers(*u->sub, lo, n, 120000000);
    INFO("upstream " << u->name << " missing " << u->tracker.Missing(lo, n).size() << " of "
                     << lo << ".." << n);
    CHECK(covered);
  }
  CHECK(WaitAllSaved(30000000));
  Signal(SIGTERM);
  const auto status = WaitExit(20000000);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  Stopped("final stop");
  const RingFile f = Read();
  CHECK(f.next_seq - 1 == n);  // the drainer committed nothing
  DbSnapshot rows = ReadBufferDb(data_dir(), true);
  REQUIRE(rows.ok);
  for (int i = 0; i < static_cast<int>(ups_.size()); ++i) {
    Upstream& u = *ups_[static_cast<size_t>(i)];
    INFO("upstream " << u.name);
    CHECK(f.cursor[static_cast<size_t>(i)] == n);
    CHECK(u.tracker.bad_payloads() == 0);
    CHECK(u.tracker.reused() == 0);       // a seq always carries the same event
    CHECK(u.tracker.out_of_order() == 0); // first sends in seq order
    CHECK(u.tracker.MaxSeen() == n);
    // First sends skip only what was never sent here or was evicted
    // unsent; everything else arrived.
    uint64_t skipped = 0;
    for (const auto& g : u.tracker.first_send_gaps()) {
      const uint64_t first = std::max<uint64_t>(g.first, u.base + 1);
      if (g.second < first) continue;
      skipped += g.second - first + 1;
      CHECK(g.second < f.min_seq);
    }
    CHECK(skipped <= f.evicted_unsent[static_cast<size_t>(i)]);
    if (!options_.evicting) CHECK(skipped == 0);
    CHECK(u.tracker.Distinct() + skipped == n - u.base);
    size_t mismatched = 0;
    for (const auto& kv : u.tracker.events()) {
      auto it = rows.events.find(kv.first);
      if (it != rows.events.end() &&
          (it->second.sensor != kv.second.sensor || it->second.ts_us != kv.second.ts_us)) {
        ++mismatched;
      }
    }
    CHECK(mismatched == 0);  // what arrived is what buffer.db holds
    CheckWindows(u, i);
  }
}

// Per stop: the duplicates until the next stop are resends from its saved
// cursor (at most what had arrived above it) or of a reconnect (at most
// max_inflight each).
void CrashRig::CheckWindows(Upstream& u, int index) {
  std::printf("%s, %s, upstream %s: stop, phase, saved cursor, received above it, "
              "reconnects, duplicates\n",
              options_.client.c_str(), options_.evicting ? "evicting" : "no eviction",
              u.name.c_str());
  const int accepted_end = u.proxy->accepted();
  for (size_t k = 0; k < u.marks.size(); ++k) {
    const StopMark& m = u.marks[k];
    const bool last = k + 1 == u.marks.size();
    const size_t to = last ? SIZE_MAX : u.marks[k + 1].msg;
    const int accepted_next = last ? accepted_end : u.marks[k + 1].accepted;
    // The first connection of each run resends from the cursor; a stop
    // without a connection adds nothing; every further one is a reconnect.
    const int reconnects = std::max(0, accepted_next - m.accepted - 1);
    const std::vector<uint64_t> dups = u.tracker.DuplicateSeqs(m.msg, to);
    const uint64_t bound =
        m.at_risk + static_cast<uint64_t>(options_.max_inflight) * static_cast<uint64_t>(reconnects);
    const auto below = std::count_if(dups.begin(), dups.end(),
                                     [&](uint64_t s) { return s <= m.cursor; });
    std::printf("  %3zu %-22s %8llu %6llu %3d %6zu\n", k, m.what.c_str(),
                static_cast<unsigned long long>(m.cursor),
                static_cast<unsigned long long>(m.at_risk), reconnects, dups.size());
    INFO("upstream " << u.name << " (" << index << "), stop " << k << " (" << m.what
                     << "): saved cursor " << m.cursor << ", " << m.at_risk
                     << " seqs received above it, " << reconnects << " reconnects; duplicates "
                     << u.tracker.DuplicateRanges());
    CHECK(below == 0);
    CHECK(dups.size() <= bound);
    u.total_dups += dups.size();
    if (k > 0 && dups.size() >= u.max_dups) {
      u.max_dups = dups.size();
      u.max_dups_bound = bound;
    }
  }
  std::fflush(stdout);
}

std::string CrashRig::Summary() const {
  std::string s;
  for (const auto& u : ups_) {
    s += (s.empty() ? "" : "; ") + u->name + ": " + std::to_string(u->marks.size() - 1) +
         " stops, " + std::to_string(u->total_dups) + " duplicates, at most " +
         std::to_string(u->max_dups) + " after one stop (bound there " +
         std::to_string(u->max_dups_bound) + ")";
  }
  return s;
}

}  // namespace testing
}  // namespace sluice
