// `sluice-bench wear`: what each reading costs the storage it exists to
// spare, measured on real sluiced processes (CONTRACT.md, README "Cost per
// reading"):
//   - bytes written to storage per reading (the process's /proc/PID/io
//     write_bytes ÷ readings committed over --seconds) for durability off,
//     normal and full with 20 simulated sensors at staggered intervals
//     (1000 ms + 37 ms × i: about 20 readings/s, commit_interval 20ms), and
//     for normal under a 10,000 readings/s push burst;
//   - beside each, in the same run: raw SQLite committing the same readings
//     in the same 20 ms transactions as one row per reading (WAL, the same
//     synchronous setting), measured by its thread's /proc/thread-self/io;
//   - bytes at rest per reading (every file in data_dir but buffer.reserve,
//     after --events readings of 20 sensors at 1 s cadence with 2-decimal
//     values, pushed as fast as sluiced takes them, clean stop), beside raw
//     SQLite with one row per reading; the peak RSS (VmHWM) and private
//     memory (RssAnon) of sluiced during that push; and what the block
//     codec alone stores for the same readings (in-process, blocks of 200
//     and of 4,000: the target format).
// The data dirs live under $TMPDIR (or /tmp): it must be a disk-backed
// file system (on tmpfs nothing counts as written), which is checked.
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>

#include "bench/bench.h"
#include "bench/util.h"
#include "bench/wear_blocks.h"
#include "common/json_parse.h"

namespace sluice {
namespace bench {
namespace {

constexpr int kSensors = 20;
constexpr int64_t kCommitUs = 20000;
constexpr uint64_t kTmpfsMagic = 0x01021994;

// write_bytes of a /proc/.../io file; -1 if unreadable.
int64_t IoWriteBytes(const std::string& path) {
  const std::string text = ReadFile(path);
  const size_t at = text.find("\nwrite_bytes:");
  if (at == std::string::npos) return -1;
  return std::strtoll(text.c_str() + at + 13, nullptr, 10);
}

// Sensor i's interval: 1000 ms + 37 ms × i.
int64_t IntervalUs(int i) { return (1000 + 37 * i) * 1000LL; }

// A sluiced in its own directory, its committed seq read through
// `sluice status --json` on its control socket.
class Daemon {
 public:
  explicit Daemon(std::string dir) : dir_(std::move(dir)) {}
  std::string data_dir() const { return dir_ + "/data"; }
  std::string push_socket() const { return dir_ + "/push.sock"; }

  // [agent] and [buffer] (durability, `buffer_extra`), then `sensors`.
  bool Start(const std::string& durability, const std::string& buffer_extra,
             const std::string& sensors, std::string* error) {
    std::string conf = "[agent]\nid = \"wear\"\ndata_dir = \"" + data_dir() +
                       "\"\ncontrol_socket = \"" + dir_ + "/control.sock\"\n";
    conf += "[buffer]\ndurability = \"" + durability + "\"\ncommit_interval = \"20ms\"\n" +
            buffer_extra + "\n" + sensors;
    if (!WriteFile(dir_ + "/sluiced.toml", conf)) {
      *error = "cannot write " + dir_ + "/sluiced.toml";
      return false;
    }
    if (!child_.Start({BinDir() + "/sluiced", "--config", dir_ + "/sluiced.toml"},
                      dir_ + "/sluiced.log", error)) {
      return false;
    }
    if (!WaitUntil([&] { return LastSeq().has_value() || !Alive(); }, 20000000, 50000) ||
        !Alive()) {
      *error = "sluiced did not start: " + ReadFile(dir_ + "/sluiced.log");
      return false;
    }
    return true;
  }
  bool Alive() { return child_.running() && !child_.Wait(0); }
  pid_t pid() const { return child_.pid(); }
  int64_t WriteBytes() const { return IoWriteBytes("/proc/" + std::to_string(pid()) + "/io"); }

  std::optional<uint64_t> LastSeq() {
    Child cli;
    std::string err;
    const std::string out = dir_ + "/status.json";
    ::unlink(out.c_str());  // Child appends
    if (!cli.Start({BinDir() + "/sluice", "--socket", dir_ + "/control.sock", "status", "--json"},
                   out, &err) ||
        !cli.Wait(10000000) || !cli.Succeeded()) {
      return std::nullopt;
    }
    JsonLimits limits;
    limits.max_bytes = 64 << 20;
    auto v = ParseJson(ReadFile(out), limits);
    const JsonValue* seq = v.ok() ? v->AtPath("$.buffer.last_seq") : nullptr;
    if (!seq || !seq->is_number()) return std::nullopt;
    return static_cast<uint64_t>(seq->AsNumber());
  }
  // SIGTERM; true on a clean exit.
  bool Stop() {
    child_.Terminate(30000000);
    return child_.Succeeded();
  }

 private:
  std::string dir_;
  Child child_;
};

// Raw SQLite, one row per reading, WAL with the given synchronous setting.
class RawTable {
 public:
  bool Open(const std::string& path, const char* synchronous, std::string* error) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) return Fail(error);
    const std::string pragmas = std::string("PRAGMA journal_mode=WAL;PRAGMA synchronous=") +
                                synchronous +
                                ";CREATE TABLE IF NOT EXISTS readings(seq INTEGER PRIMARY KEY,"
                                " ts_us INTEGER NOT NULL, sensor TEXT NOT NULL, value REAL);";
    if (sqlite3_exec(db_, pragmas.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK ||
        sqlite3_prepare_v2(db_, "INSERT INTO readings VALUES(?1,?2,?3,?4)", -1, &insert_,
                           nullptr) != SQLITE_OK) {
      return Fail(error);
    }
    return true;
  }
  ~RawTable() {
    sqlite3_finalize(insert_);
    sqlite3_close(db_);
  }
  // One transaction.
  bool Commit(const std::vector<std::pair<int, int64_t>>& readings, double value) {
    if (sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) return false;
    for (const auto& [sensor, ts] : readings) {
      sqlite3_bind_int64(insert_, 1, static_cast<sqlite3_int64>(++seq_));
      sqlite3_bind_int64(insert_, 2, ts);
      const std::string name = "wear.s" + std::to_string(sensor);
      sqlite3_bind_text(insert_, 3, name.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_double(insert_, 4, value);
      if (sqlite3_step(insert_) != SQLITE_DONE) return false;
      sqlite3_reset(insert_);
    }
    return sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  uint64_t rows() const { return seq_; }

 private:
  bool Fail(std::string* error) {
    *error = db_ ? sqlite3_errmsg(db_) : "sqlite3_open failed";
    return false;
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* insert_ = nullptr;
  uint64_t seq_ = 0;
};

// Commits `per_second` readings (or the staggered schedule when 0) every
// 20 ms for `seconds` into a raw table; bytes its thread wrote per reading.
struct RawFigure {
  double bytes_per_reading = -1;
  uint64_t readings = 0;
  std::string error;
};
RawFigure RawWear(const std::string& path, const char* synchronous, int per_second,
                  double seconds) {
  RawFigure f;
  RawTable t;
  if (!t.Open(path, synchronous, &f.error)) return f;
  std::vector<int64_t> next(kSensors, 0);
  const int64_t start = NowUs(), end = start + static_cast<int64_t>(seconds * 1e6);
  const int64_t io0 = IoWriteBytes("/proc/thread-self/io");
  std::vector<std::pair<int, int64_t>> due;
  double carry = 0;
  for (int64_t tick = start; tick < end; tick += kCommitUs) {
    const int64_t now = NowUs();
    if (tick > now) std::this_thread::sleep_for(std::chrono::microseconds(tick - now));
    due.clear();
    if (per_second > 0) {
      carry += per_second * (kCommitUs / 1e6);
      for (; carry >= 1; carry -= 1) due.emplace_back(static_cast<int>(t.rows() % kSensors), tick);
    } else {
      for (int i = 0; i < kSensors; ++i) {
        if (tick - start >= next[i]) {
          due.emplace_back(i, tick);
          next[i] += IntervalUs(i);
        }
      }
    }
    if (!due.empty() && !t.Commit(due, 21.5)) {
      f.error = "raw SQLite commit failed";
      return f;
    }
  }
  const int64_t io1 = IoWriteBytes("/proc/thread-self/io");
  f.readings = t.rows();
  if (io0 >= 0 && io1 >= 0 && f.readings > 0) {
    f.bytes_per_reading = static_cast<double>(io1 - io0) / static_cast<double>(f.readings);
  }
  return f;
}

std::string StaggeredSensors() {
  std::string s;
  for (int i = 0; i < kSensors; ++i) {
    s += "[[sensor]]\nname = \"wear.s" + std::to_string(i) + "\"\ndriver = \"simulated\"\n" +
         "interval = \"" + std::to_string(IntervalUs(i) / 1000) + "ms\"\nunit = \"C\"\n" +
         "params = { shape = \"random_walk\", min = 0.0, max = 100.0, seed = " +
         std::to_string(i + 1) + " }\n";
  }
  return s;
}

std::string PushSensor(const Daemon& d) {
  return "[[sensor]]\nname = \"ingest\"\ndriver = \"push\"\nparams = { listen = \"unix://" +
         d.push_socket() + "\" }\n";
}

int ConnectPush(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}
bool SendAll(int fd, const std::string& s) {
  for (size_t off = 0; off < s.size();) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Line i of the at-rest workload: sensor i % 20 at 1 s cadence (event
// time ending now), a 2-decimal random walk.
std::string RestLines(uint64_t first, uint64_t n, int64_t t0_us, std::vector<int64_t>* walk) {
  std::string out;
  char line[96];
  for (uint64_t i = first; i < first + n; ++i) {
    const int s = static_cast<int>(i % kSensors);
    int64_t& v = (*walk)[s];  // hundredths
    v += static_cast<int64_t>((i * 2654435761u >> 7) % 7) - 3;
    const int64_t ts = t0_us + static_cast<int64_t>(i / kSensors) * 1000000;
    const long long a = std::llabs(static_cast<long long>(v));  // sign apart: -0.05 too
    std::snprintf(line, sizeof line, "wear.s%d %s%lld.%02lld %lld\n", s, v < 0 ? "-" : "",
                  a / 100, a % 100, static_cast<long long>(ts));
    out += line;
  }
  return out;
}

struct Check {
  int rc = 0;
  void Fail(const std::string& what) {
    std::fprintf(stderr, "wear: %s\n", what.c_str());
    rc = 1;
  }
};

void Staggered(const std::string& root, double seconds, Check* check) {
  const char* modes[] = {"off", "normal", "full"};
  const char* raw_sync[] = {"OFF", "NORMAL", "FULL"};
  std::vector<std::unique_ptr<Daemon>> daemons;
  for (const char* m : modes) {
    daemons.push_back(std::make_unique<Daemon>(root + "/staggered-" + m));
    ::mkdir((root + "/staggered-" + m).c_str(), 0700);
    std::string err;
    if (!daemons.back()->Start(m, "", StaggeredSensors(), &err)) {
      check->Fail(std::string("staggered ") + m + ": " + err);
      return;
    }
  }
  // The raw baselines run beside the daemons, one thread each.
  RawFigure raw[3];
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      raw[i] = RawWear(root + "/raw-staggered-" + modes[i] + ".db", raw_sync[i], 0, seconds + 2);
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // start-up is not steady state
  int64_t io0[3];
  uint64_t seq0[3];
  for (int i = 0; i < 3; ++i) {
    io0[i] = daemons[i]->WriteBytes();
    seq0[i] = daemons[i]->LastSeq().value_or(0);
  }
  std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6)));
  for (int i = 0; i < 3; ++i) {
    const int64_t io1 = daemons[i]->WriteBytes();
    const uint64_t seq1 = daemons[i]->LastSeq().value_or(0);
    if (!daemons[i]->Stop()) check->Fail(std::string("staggered ") + modes[i] + ": unclean stop");
    if (io0[i] < 0 || io1 < 0 || seq1 <= seq0[i]) {
      check->Fail(std::string("staggered ") + modes[i] + ": nothing measured");
      continue;
    }
    const uint64_t readings = seq1 - seq0[i];
    const double per = static_cast<double>(io1 - io0[i]) / static_cast<double>(readings);
    JsonLine("wear", std::string("staggered_") + modes[i])
        .Num("seconds", seconds)
        .Int("readings", static_cast<int64_t>(readings))
        .Int("bytes_written", io1 - io0[i])
        .Num("bytes_per_reading", per)
        .Print();
    AddSummary({"wear", std::string("20 sensors, durability ") + modes[i],
                std::to_string(static_cast<int64_t>(std::lround(per))) + " B/reading",
                std::to_string(readings) + " readings in " + std::to_string(int(seconds)) + " s"});
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 3; ++i) {
    if (!raw[i].error.empty() || raw[i].bytes_per_reading < 0) {
      check->Fail(std::string("raw staggered ") + modes[i] + ": " + raw[i].error);
      continue;
    }
    JsonLine("wear", std::string("raw_sqlite_staggered_") + modes[i])
        .Int("readings", static_cast<int64_t>(raw[i].readings))
        .Num("bytes_per_reading", raw[i].bytes_per_reading)
        .Print();
    AddSummary({"wear", std::string("raw SQLite, same commits, synchronous=") + raw_sync[i],
                std::to_string(static_cast<int64_t>(std::lround(raw[i].bytes_per_reading))) +
                    " B/reading",
                "baseline: one row per reading, 20 ms transactions"});
  }
}

void Burst(const std::string& root, double seconds, Check* check) {
  Daemon d(root + "/burst");
  ::mkdir((root + "/burst").c_str(), 0700);
  std::string err;
  if (!d.Start("normal", "max_events = 10_000_000\n", PushSensor(d), &err)) {
    check->Fail("burst: " + err);
    return;
  }
  RawFigure raw;
  std::thread baseline([&] { raw = RawWear(root + "/raw-burst.db", "NORMAL", 10000, seconds); });
  const int fd = ConnectPush(d.push_socket());
  if (fd < 0) {
    check->Fail("burst: cannot connect to the push socket");
    baseline.join();
    return;
  }
  const int64_t io0 = d.WriteBytes();
  const uint64_t seq0 = d.LastSeq().value_or(0);
  const int64_t start = NowUs(), end = start + static_cast<int64_t>(seconds * 1e6);
  uint64_t sent = 0;
  for (int64_t tick = start; tick < end; tick += 10000) {  // 100 lines every 10 ms
    const int64_t now = NowUs();
    if (tick > now) std::this_thread::sleep_for(std::chrono::microseconds(tick - now));
    std::string lines;
    for (int i = 0; i < 100; ++i, ++sent) {
      lines += "wear.b" + std::to_string(sent % kSensors) + " " + std::to_string(sent % 1000) +
               ".25\n";
    }
    if (!SendAll(fd, lines)) break;
  }
  ::close(fd);
  WaitUntil([&] { return d.LastSeq().value_or(0) >= seq0 + sent; }, 30000000, 50000);
  const int64_t io1 = d.WriteBytes();
  const uint64_t seq1 = d.LastSeq().value_or(0);
  if (!d.Stop()) check->Fail("burst: unclean stop");
  baseline.join();
  if (io0 < 0 || io1 < 0 || seq1 < seq0 + sent || sent == 0) {
    check->Fail("burst: " + std::to_string(seq1 - seq0) + " of " + std::to_string(sent) +
                " readings committed");
    return;
  }
  const double per = static_cast<double>(io1 - io0) / static_cast<double>(sent);
  JsonLine("wear", "burst_normal")
      .Int("readings", static_cast<int64_t>(sent))
      .Num("bytes_per_reading", per)
      .Num("raw_sqlite_bytes_per_reading", raw.bytes_per_reading)
        .Print();
  AddSummary({"wear", "10,000 readings/s burst, normal",
              std::to_string(static_cast<int64_t>(std::lround(per))) + " B/reading",
              "raw SQLite, same commits: " +
                  std::to_string(static_cast<int64_t>(std::lround(raw.bytes_per_reading))) +
                  " B/reading"});
  if (!raw.error.empty()) check->Fail("raw burst: " + raw.error);
}

void AtRest(const std::string& root, uint64_t n, Check* check) {
  Daemon d(root + "/rest");
  ::mkdir((root + "/rest").c_str(), 0700);
  std::string err;
  if (!d.Start("normal", "max_events = " + std::to_string(2 * n + 1000) + "\n", PushSensor(d),
               &err)) {
    check->Fail("at rest: " + err);
    return;
  }
  const int fd = ConnectPush(d.push_socket());
  if (fd < 0) {
    check->Fail("at rest: cannot connect to the push socket");
    return;
  }
  std::atomic<bool> pushing{true};
  int64_t hwm = 0, anon = 0;
  std::thread sampler([&] {
    while (pushing) {
      anon = std::max(anon, ProcStatusKiB(d.pid(), "RssAnon"));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const uint64_t seq0 = d.LastSeq().value_or(0);
  std::vector<int64_t> walk(kSensors, 2150);
  const int64_t t0 = static_cast<int64_t>(::time(nullptr) - static_cast<int64_t>(n / kSensors) - 60) *
                     1000000;
  const int64_t start = NowUs();
  bool ok = true;
  for (uint64_t done = 0; done < n && ok;) {
    const uint64_t m = std::min<uint64_t>(4096, n - done);
    ok = SendAll(fd, RestLines(done, m, t0, &walk));
    done += m;
  }
  ::close(fd);
  WaitUntil([&] { return d.LastSeq().value_or(0) >= seq0 + n || !d.Alive(); }, 600000000, 100000);
  const double push_s = static_cast<double>(NowUs() - start) / 1e6;
  hwm = ProcStatusKiB(d.pid(), "VmHWM");
  pushing = false;
  sampler.join();
  const uint64_t committed = d.LastSeq().value_or(0) - seq0;
  if (!d.Stop()) check->Fail("at rest: unclean stop");
  if (!ok || committed < n) {
    check->Fail("at rest: " + std::to_string(committed) + " of " + std::to_string(n) +
                " readings committed");
    return;
  }
  struct stat st {};
  const uint64_t reserve =
      ::stat((d.data_dir() + "/buffer.reserve").c_str(), &st) == 0 ? st.st_size : 0;
  const uint64_t bytes = DirBytes(d.data_dir()) - reserve;
  const double per = static_cast<double>(bytes) / static_cast<double>(n);
  // Raw SQLite, one row per reading, the same readings.
  double raw_per = -1;
  {
    RawTable raw;
    const std::string path = root + "/raw-rest.db";
    bool raw_ok = raw.Open(path, "NORMAL", &err);
    std::vector<std::pair<int, int64_t>> batch;
    for (uint64_t i = 0; i < n && raw_ok; i += batch.size()) {
      batch.clear();
      for (uint64_t j = i; j < std::min(n, i + 10000); ++j) {
        batch.emplace_back(static_cast<int>(j % kSensors),
                           t0 + static_cast<int64_t>(j / kSensors) * 1000000);
      }
      raw_ok = raw.Commit(batch, 21.37);
    }
    if (!raw_ok) check->Fail("raw at rest: " + err);
  }  // closed: the WAL is checkpointed into the file
  if (::stat((root + "/raw-rest.db").c_str(), &st) == 0) {
    raw_per = static_cast<double>(st.st_size) / static_cast<double>(n);
  }
  char per_text[32], holds_text[32];
  std::snprintf(per_text, sizeof per_text, "%.1f B/reading", per);
  std::snprintf(holds_text, sizeof holds_text, "%.1f M readings", 256.0 * 1048576 / per / 1e6);
  JsonLine("wear", "at_rest")
      .Int("readings", static_cast<int64_t>(n))
      .Int("file_bytes", static_cast<int64_t>(bytes))
      .Num("bytes_per_reading", per)
      .Num("raw_sqlite_bytes_per_reading", raw_per)
      .Int("ring_256mib_holds", static_cast<int64_t>(256.0 * 1048576 / per))
      .Num("push_seconds", push_s)
      .Int("vmhwm_kib", hwm)
      .Int("rss_anon_peak_kib", anon)
        .Print();
  AddSummary({"wear", "at rest, 20 sensors, 2-decimal values",
              per_text,
              "raw SQLite one row per reading: " +
                  std::to_string(static_cast<int64_t>(std::lround(raw_per))) +
                  " B; 256 MiB holds " + holds_text});
  // The block codec alone, the same readings (the walk replayed).
  double block_per[2] = {-1, -1};
  const size_t per_block[2] = {200, 4000};
  for (int b = 0; b < 2; ++b) {
    std::vector<int64_t> replay(kSensors, 2150);
    block_per[b] = BlockBytesPerReading(
        [&](uint64_t first, uint64_t m) { return RestLines(first, m, t0, &replay); }, n,
        per_block[b]);
    if (block_per[b] < 0) check->Fail("block codec: a block did not round-trip");
  }
  char block_text[32], block_note[80];
  std::snprintf(block_text, sizeof block_text, "%.2f B/reading", block_per[0]);
  std::snprintf(block_note, sizeof block_note,
                "blocks of 4,000: %.2f B; the target format, encoded in-process", block_per[1]);
  JsonLine("wear", "at_rest_block_codec")
      .Int("readings", static_cast<int64_t>(n))
      .Num("bytes_per_reading_blocks_200", block_per[0])
      .Num("bytes_per_reading_blocks_4000", block_per[1])
      .Print();
  AddSummary({"wear", "at rest, block codec alone (blocks of 200)", block_text, block_note});
  AddSummary({"wear", "peak RSS pushing " + std::to_string(n) + " lines",
              std::to_string(hwm / 1024) + " MiB",
              "RssAnon peak " + std::to_string(anon / 1024) + " MiB"});
}

}  // namespace

int RunWear(const Args& args) {
  const double seconds =
      args.seconds > 0 ? static_cast<double>(args.seconds) : (args.quick ? 3.0 : 120.0);
  const uint64_t n = args.events > 0 ? args.events : (args.quick ? 20000 : 1000000);
  TempDir root("sluice-bench-wear");
  if (args.keep) root.Keep();
  struct statfs fs {};
  if (::statfs(root.path().c_str(), &fs) == 0 && static_cast<uint64_t>(fs.f_type) == kTmpfsMagic) {
    std::fprintf(stderr, "wear: %s is on tmpfs, where nothing counts as written; set TMPDIR to a "
                         "directory on disk\n", root.path().c_str());
    return 1;
  }
  Check check;
  Staggered(root.path(), seconds, &check);
  Burst(root.path(), std::min(seconds, 30.0), &check);
  AtRest(root.path(), n, &check);
  return check.rc;
}

}  // namespace bench
}  // namespace sluice
