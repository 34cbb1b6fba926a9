#include "tests/integration/it_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>  // test oracle: reads buffer.db read-only to check what is on disk
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <random>
#include <sstream>

#include <catch2/catch.hpp>

namespace sluice {
namespace testing {

std::string ConfigSpec::ToToml() const {
  std::string t;
  t += "[agent]\n";
  t += std::string("id = \"") + kAgent + "\"\n";
  t += "data_dir = \"" + data_dir + "\"\n";
  t += "control_socket = \"" + control_socket + "\"\n";
  t += "shutdown_grace = \"" + shutdown_grace + "\"\n\n";
  t += "[buffer]\n";
  t += "durability = \"" + durability + "\"\n";
  t += "commit_interval = \"" + commit_interval + "\"\n";
  t += extra_buffer + "\n";
  for (const auto& s : sensors) t += s + "\n";
  if (!upstream_url.empty()) {
    t += "[[upstream]]\n";
    t += std::string("name = \"") + kUpstream + "\"\n";
    t += "url = \"" + upstream_url + "\"\n";
    t += "topic = \"sluice/{agent}/{sensor}\"\n";
    t += "status_topic = \"sluice/{agent}/status\"\n";
    t += "qos = 1\nformat = \"json\"\n";
    t += "max_inflight = " + std::to_string(max_inflight) + "\n";
    t += "reconnect_min = \"50ms\"\nreconnect_max = \"400ms\"\n";
  }
  return t;
}

std::string SimulatedSensor(const std::string& name, const std::string& interval,
                            const std::string& unit) {
  return "[[sensor]]\nname = \"" + name + "\"\ndriver = \"simulated\"\ninterval = \"" +
         interval + "\"\nunit = \"" + unit +
         "\"\nparams = { shape = \"sine\", min = 20.0, max = 90.0, period = \"10s\", seed = 7 }\n";
}

std::string PushSensor(const std::string& name, const std::string& listen) {
  return "[[sensor]]\nname = \"" + name + "\"\ndriver = \"push\"\nparams = { listen = \"" +
         listen + "\" }\n";
}

std::string SluicedPath() { return BinDir() + "/sluiced"; }

std::vector<std::string> SluicedArgv() {
  std::vector<std::string> argv;
  const char* emulator = getenv("SLUICE_EMULATOR");
  std::istringstream words(emulator ? emulator : "");
  for (std::string w; words >> w;) argv.push_back(w);
  argv.push_back(SluicedPath());
  return argv;
}

RunResult RunSluiced(const std::vector<std::string>& args, const std::string& scratch_dir,
                     int64_t timeout_us) {
  // Under a cross build's emulator: qemu is the program, sluiced its argument.
  std::vector<std::string> argv = SluicedArgv();
  const std::string program = argv.front();
  argv.erase(argv.begin());
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(program, argv, scratch_dir, timeout_us);
}

RunResult RunProgram(const std::string& binary, const std::vector<std::string>& args,
                     const std::string& scratch_dir, int64_t timeout_us,
                     const std::vector<std::string>& env) {
  static int counter = 0;
  const std::string base = scratch_dir + "/run" + std::to_string(counter++);
  Process p;
  Process::Options o;
  o.argv.push_back(binary);
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.extra_env = env;
  o.stdout_path = base + ".out";
  o.stderr_path = base + ".err";
  RunResult r;
  if (!p.Start(o)) return r;
  auto st = p.Wait(timeout_us);
  if (st) r.status = *st;
  else p.Terminate(1000000);
  r.out = ReadFile(o.stdout_path);
  r.err = ReadFile(o.stderr_path);
  return r;
}

bool Sluiced::Start(std::string* error) {
  log_offset_ = ReadFile(stderr_path_).size();
  Process::Options o;
  o.argv = SluicedArgv();
  o.argv.insert(o.argv.end(), {"--config", config_path_});
  o.extra_env = env_;
  o.stderr_path = stderr_path_;
  o.stdout_path = stderr_path_;
  if (!process_.Start(o, error)) return false;
  bool up = WaitUntil(
      [&] {
        if (process_.Wait(0)) return true;  // exited: stop waiting
        std::string log = ReadFile(stderr_path_);
        return log.find("agent: serving", log_offset_) != std::string::npos;
      },
      30000000, 5000);
  if (!up || !process_.running()) {
    if (error) {
      *error = "sluiced did not start (" + DescribeWaitStatus(process_.wait_status()) +
               "): " + ReadFile(stderr_path_).substr(log_offset_);
    }
    return false;
  }
  return true;
}

void Sluiced::Kill() {
  if (!process_.running()) return;
  process_.Kill(SIGKILL);
  process_.Wait(20000000);
}

int Sluiced::Terminate(int64_t grace_us) { return process_.Terminate(grace_us); }

bool Sluiced::Alive() { return process_.running() && !process_.Wait(0); }

uint64_t QueryU64(sqlite3* db, const char* sql, bool* ok) {
  sqlite3_stmt* st = nullptr;
  uint64_t v = 0;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    *ok = false;
    return 0;
  }
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) v = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
  else if (rc != SQLITE_DONE) *ok = false;
  sqlite3_finalize(st);
  return v;
}

DbSnapshot ReadBufferDb(const std::string& data_dir, bool with_rows) {
  DbSnapshot s;
  const std::string path = data_dir + "/buffer.db";
  if (access(path.c_str(), F_OK) != 0) {
    s.error = "no " + path;
    return s;
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    s.error = db ? sqlite3_errmsg(db) : "open failed";
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 5000);
  bool ok = true;
  // One read transaction, so all figures are from the same snapshot.
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  s.rows = QueryU64(db, "SELECT count(*) FROM events", &ok);
  s.min_seq = QueryU64(db, "SELECT coalesce(min(seq), 0) FROM events", &ok);
  s.max_seq = QueryU64(db, "SELECT coalesce(max(seq), 0) FROM events", &ok);
  s.meta_next_seq = QueryU64(db, "SELECT value FROM meta WHERE key = 'next_seq'", &ok);
  s.cursor = QueryU64(db, "SELECT acked_seq FROM cursors WHERE upstream = 'cloud'", &ok);
  if (ok && with_rows) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT seq, sensor, ts_us FROM events ORDER BY seq", -1, &st,
                           nullptr) == SQLITE_OK) {
      int rc;
      while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        DbRow r;
        const unsigned char* txt = sqlite3_column_text(st, 1);
        r.sensor = txt ? reinterpret_cast<const char*>(txt) : "";
        r.ts_us = sqlite3_column_int64(st, 2);
        s.events[static_cast<uint64_t>(sqlite3_column_int64(st, 0))] = r;
      }
      if (rc != SQLITE_DONE) ok = false;
      sqlite3_finalize(st);
    } else {
      ok = false;
    }
  }
  if (!ok) s.error = sqlite3_errmsg(db);
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  s.ok = ok;
  return s;
}

uint64_t ReadSeqReservation(const std::string& data_dir) {
  std::string t = ReadFile(data_dir + "/buffer.seq");
  return t.empty() ? 0 : std::strtoull(t.c_str(), nullptr, 10);
}

// Minimal parser for the flat objects of CONTRACT.md "Upstream payloads":
// string and number values at the top level ("labels" objects are skipped).
bool ParseEventJson(const std::string& p, EventJson* out) {
  size_t i = 0;
  auto ws = [&] { while (i < p.size() && std::isspace(static_cast<unsigned char>(p[i]))) ++i; };
  auto str = [&](std::string* s) {
    if (i >= p.size() || p[i] != '"') return false;
    ++i;
    s->clear();
    while (i < p.size() && p[i] != '"') {
      if (p[i] == '\\' && i + 1 < p.size()) ++i;
      s->push_back(p[i++]);
    }
    if (i >= p.size()) return false;
    ++i;
    return true;
  };
  ws();
  if (i >= p.size() || p[i++] != '{') return false;
  *out = EventJson();
  for (;;) {
    ws();
    if (i < p.size() && p[i] == '}') return true;
    std::string key, sval;
    if (!str(&key)) return false;
    ws();
    if (i >= p.size() || p[i++] != ':') return false;
    ws();
    out->keys.insert(key);
    if (i < p.size() && p[i] == '"') {
      if (!str(&sval)) return false;
      if (key == "agent") out->agent = sval;
      if (key == "sensor") out->sensor = sval;
      if (key == "unit") out->unit = sval;
      if (key == "quality") out->quality = sval;
    } else if (i < p.size() && p[i] == '{') {
      size_t close = p.find('}', i);
      if (close == std::string::npos) return false;
      i = close + 1;
    } else {
      size_t start = i;
      while (i < p.size() && p[i] != ',' && p[i] != '}') ++i;
      std::string num = p.substr(start, i - start);
      if (num.empty()) return false;
      if (key == "seq") out->seq = std::strtoull(num.c_str(), nullptr, 10);
      if (key == "ts_us") out->ts_us = std::strtoll(num.c_str(), nullptr, 10);
      if (key == "value") out->value = std::strtod(num.c_str(), nullptr);
    }
    ws();
    if (i < p.size() && p[i] == ',') ++i;
  }
}

void SeqTracker::Feed(const std::vector<ReceivedMessage>& messages) {
  for (; next_ < messages.size(); ++next_) {
    const ReceivedMessage& m = messages[next_];
    if (m.topic == status_topic_) continue;
    EventJson e;
    if (!ParseEventJson(m.payload, &e) || e.seq == 0 || e.agent != kAgent) {
      ++bad_;
      continue;
    }
    int& c = count_[e.seq];
    if (++c > 1) {
      ++duplicates_;
      dup_index_.push_back(next_);
      dup_seq_.push_back(e.seq);
      if (payload_[e.seq] != m.payload) ++reused_;
      continue;
    }
    payload_[e.seq] = m.payload;
    events_[e.seq] = e;
    if (e.seq < last_first_) ++out_of_order_;
    if (e.seq > last_first_ + 1) first_gaps_.emplace_back(last_first_ + 1, e.seq - 1);
    last_first_ = std::max(last_first_, e.seq);
  }
}

bool SeqTracker::WaitCovers(const Subscriber& sub, uint64_t lo, uint64_t hi,
                            int64_t timeout_us) {
  uint64_t next = lo;  // everything below `next` is known to be seen
  return sub.WaitFor(
      [&](const std::vector<ReceivedMessage>& m) {
        Feed(m);
        while (next <= hi && count_.count(next)) ++next;
        return next > hi;
      },
      timeout_us);
}

std::vector<uint64_t> SeqTracker::Missing(uint64_t lo, uint64_t hi) const {
  std::vector<uint64_t> out;
  for (uint64_t s = lo; s <= hi && s != 0; ++s) {
    if (!count_.count(s)) out.push_back(s);
  }
  return out;
}

uint64_t SeqTracker::DuplicatesFrom(size_t from, size_t to) const {
  return static_cast<uint64_t>(std::count_if(dup_index_.begin(), dup_index_.end(),
                                             [&](size_t i) { return i >= from && i < to; }));
}

std::vector<uint64_t> SeqTracker::DuplicateSeqs(size_t from, size_t to) const {
  std::vector<uint64_t> out;
  for (size_t i = 0; i < dup_index_.size(); ++i) {
    if (dup_index_[i] >= from && dup_index_[i] < to) out.push_back(dup_seq_[i]);
  }
  return out;
}

uint64_t SeqTracker::SeenAbove(uint64_t seq) const {
  return static_cast<uint64_t>(std::distance(count_.upper_bound(seq), count_.end()));
}

std::string SeqTracker::DuplicateRanges(size_t max_ranges) const {
  std::string out;
  size_t ranges = 0;
  for (size_t i = 0; i < dup_seq_.size() && ranges < max_ranges;) {
    size_t j = i;
    while (j + 1 < dup_seq_.size() && dup_seq_[j + 1] == dup_seq_[j] + 1) ++j;
    out += (out.empty() ? "" : ", ") + std::to_string(dup_seq_[i]) + "-" +
           std::to_string(dup_seq_[j]) + " (msg " + std::to_string(dup_index_[i]) + ")";
    ++ranges;
    i = j + 1;
  }
  return out;
}

uint64_t TestSeed(const std::string& what) {
  const char* s = std::getenv("SLUICE_TEST_SEED");
  const uint64_t seed =
      s && *s ? std::strtoull(s, nullptr, 10) : static_cast<uint64_t>(std::random_device{}());
  WARN(what << ": seed " << seed << " (replay with SLUICE_TEST_SEED=" << seed << ")");
  return seed;
}

int ConnectUnix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int ConnectTcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool SendUdp(int port, const std::string& datagram) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ssize_t n = sendto(fd, datagram.data(), datagram.size(), 0,
                     reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  close(fd);
  return n == static_cast<ssize_t>(datagram.size());
}

Pusher::Pusher(std::string path, std::string sensor, int rate)
    : path_(std::move(path)), sensor_(std::move(sensor)), rate_(std::max(rate, 100)) {}

Pusher::~Pusher() { Stop(); }

void Pusher::Start() { thread_ = std::thread(&Pusher::Run, this); }

void Pusher::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Pusher::Run() {
  const int per_tick = std::max(1, rate_ / 100);  // a tick is 10 ms
  int fd = -1;
  uint64_t i = 0;
  while (!stop_) {
    if (paused_) {
      SleepMs(10);
      continue;
    }
    if (fd < 0) {
      fd = ConnectUnix(path_);
      if (fd < 0) {
        SleepMs(20);
        continue;
      }
    }
    std::string chunk;
    for (int k = 0; k < per_tick; ++k) {
      chunk += sensor_ + " " + std::to_string(i + static_cast<uint64_t>(k)) + "\n";
    }
    if (!SendAll(fd, chunk)) {  // the daemon went away
      close(fd);
      fd = -1;
      continue;
    }
    i += static_cast<uint64_t>(per_tick);
    sent_ += static_cast<uint64_t>(per_tick);
    SleepMs(10);
  }
  if (fd >= 0) close(fd);
}

void SleepMs(int64_t ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

size_t CountOf(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + needle.size())) {
    ++n;
  }
  return n;
}

}  // namespace testing
}  // namespace sluice
