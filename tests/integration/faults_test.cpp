// Faults a real sluiced must survive (CONTRACT.md "Guarantees", "Push line
// protocol"): a corrupt buffer.db at start, bad lines on the push listeners.
// (A full disk: full_disk_test.cpp.)
#include <sqlite3.h>  // test oracle: reads buffer.db read-only to check what is on disk
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <random>
#include <string>

#include "tests/integration/it_support.h"
#include "tests/support/mosquitto_broker.h"

namespace sluice {
namespace testing {
namespace {

const std::string kStatusTopic = std::string("sluice/") + kAgent + "/status";

bool ExitedZero(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

// Files in `dir` whose names start with `prefix`.
std::vector<std::string> FilesWithPrefix(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (struct dirent* e = readdir(d)) {
      if (std::string(e->d_name).rfind(prefix, 0) == 0) out.push_back(e->d_name);
    }
    closedir(d);
  }
  return out;
}

// PRAGMA integrity_check on a closed database: "ok" or the problem.
std::string IntegrityCheck(const std::string& path) {
  sqlite3* db = nullptr;
  std::string result = "cannot open";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    } else {
      result = sqlite3_errmsg(db);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return result;
}

std::string Garbage(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string g(n, '\0');
  for (char& c : g) c = static_cast<char>(rng() & 0xff);
  return g;
}

size_t CountSensor(const SeqTracker& tr, const std::string& sensor) {
  size_t n = 0;
  for (const auto& kv : tr.events()) n += kv.second.sensor == sensor;
  return n;
}

// Sends `count` lines "SENSOR i" over a fresh unix stream connection.
bool PushLines(const std::string& sock, const std::string& sensor, int from, int count) {
  int fd = -1;
  if (!WaitUntil([&] { return (fd = ConnectUnix(sock)) >= 0; }, 10000000, 20000)) return false;
  timeval tv{10, 0};  // a daemon that stops reading must not hang the test
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string lines;
  for (int i = from; i < from + count; ++i) lines += sensor + " " + std::to_string(i) + "\n";
  bool ok = SendAll(fd, lines);
  close(fd);
  return ok;
}

}  // namespace

TEST_CASE("corrupt buffer.db at start: quarantined, fresh buffer, serves", "[integration][faults]") {
  TempDir dir;
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  const std::string sock = dir.Join("push.sock");
  spec.sensors = {PushSensor("ingest", "unix://" + sock)};
  spec.upstream_url = "mqtt://127.0.0.1:" + std::to_string(broker.port());
  REQUIRE(WriteFile(dir.Join("sluiced.toml"), spec.ToToml()));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));
  SeqTracker tr(kStatusTopic);
  const std::string db_path = spec.data_dir + "/buffer.db";
  REQUIRE(::mkdir(spec.data_dir.c_str(), 0750) == 0);

  uint64_t old_max = 0;
  std::string bad;
  SECTION("garbage file, no seq reservation: starts at seq 1") {
    bad = Garbage(64 << 10, 1);
  }
  SECTION("golden file with a corrupt events page") {
    bad = ReadFile(SourceDir() + "/tests/buffer/data/corrupt_events_page.db");
    REQUIRE(bad.size() > 4096);
  }
  SECTION("garbage over a used buffer: seq continues above the reservation") {
    REQUIRE(d.Start(&err));
    REQUIRE(PushLines(sock, "before", 0, 100));
    REQUIRE(tr.WaitCovers(sub, 1, 100, 20000000));
    REQUIRE(ExitedZero(d.Terminate()));
    old_max = ReadBufferDb(spec.data_dir).max_seq;
    CHECK(old_max == 100);
    bad = Garbage(200 << 10, 2);
    ::unlink((db_path + "-wal").c_str());
    ::unlink((db_path + "-shm").c_str());
  }
  REQUIRE(WriteFile(db_path, bad));
  const uint64_t reserved = ReadSeqReservation(spec.data_dir);
  if (old_max > 0) CHECK(reserved >= old_max);
  const uint64_t first = reserved + 1;  // reserved is 0 without buffer.seq

  REQUIRE(d.Start(&err));
  const std::string log = d.Log();
  INFO("log: " << log);
  CHECK(log.find("ERROR buffer:") != std::string::npos);
  CHECK(log.find("CORRUPT") != std::string::npos);
  auto quarantined = FilesWithPrefix(spec.data_dir, "buffer.db.corrupt-");
  std::vector<std::string> mains;
  for (const auto& f : quarantined) {
    if (f.find("-wal") == std::string::npos && f.find("-shm") == std::string::npos) {
      mains.push_back(f);
    }
  }
  REQUIRE(mains.size() == 1);
  CHECK(ReadFile(spec.data_dir + "/" + mains[0]).size() == bad.size());  // kept aside, whole

  REQUIRE(PushLines(sock, "after", 0, 50));
  REQUIRE(tr.WaitCovers(sub, first, first + 49, 20000000));
  CHECK(CountSensor(tr, "after") == 50);
  for (const auto& kv : tr.events()) {
    if (kv.second.sensor == "after") {
      CHECK(kv.first >= first);
      CHECK(kv.first > old_max);  // never a seq handed out before
    }
  }
  CHECK(tr.duplicates() == 0);
  REQUIRE(ExitedZero(d.Terminate()));
  DbSnapshot db = ReadBufferDb(spec.data_dir);
  CHECK(db.rows == 50);
  CHECK(db.min_seq == first);
  CHECK(db.max_seq == first + 49);
  CHECK(IntegrityCheck(db_path) == "ok");
  WARN("corrupt buffer.db: quarantined as " << mains[0] << "; old max seq " << old_max
                                           << ", reservation " << reserved
                                           << ", new seqs " << db.min_seq << ".." << db.max_seq);

  // A restart on the fresh file quarantines nothing more (no crash loop).
  REQUIRE(d.Start(&err));
  CHECK(FilesWithPrefix(spec.data_dir, "buffer.db.corrupt-").size() == quarantined.size());
  CHECK(ExitedZero(d.Terminate()));
}

// The integrity check runs before anything writes to the file (such as the
// switch to WAL), so the quarantined copy is the original.
TEST_CASE("corrupt buffer.db at start: kept aside byte for byte", "[integration][faults]") {
  TempDir dir;
  const std::string golden = SourceDir() + "/tests/buffer/data/corrupt_events_page.db";
  const std::string bad = ReadFile(golden);
  REQUIRE(bad.size() > 4096);
  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  spec.sensors = {PushSensor("ingest", "unix://" + dir.Join("push.sock"))};
  REQUIRE(WriteFile(dir.Join("sluiced.toml"), spec.ToToml()));
  REQUIRE(::mkdir(spec.data_dir.c_str(), 0750) == 0);
  REQUIRE(WriteFile(spec.data_dir + "/buffer.db", bad));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));
  std::string err;
  REQUIRE(d.Start(&err));
  CHECK(ExitedZero(d.Terminate()));
  std::string kept;
  for (const auto& f : FilesWithPrefix(spec.data_dir, "buffer.db.corrupt-")) {
    if (f.find("-wal") == std::string::npos && f.find("-shm") == std::string::npos) {
      kept = ReadFile(spec.data_dir + "/" + f);
    }
  }
  REQUIRE(kept.size() == bad.size());
  size_t differing = 0;
  for (size_t i = 0; i < bad.size(); ++i) differing += kept[i] != bad[i];
  CHECK(differing == 0);
}

TEST_CASE("bad push lines over tcp and udp: good ones arrive, daemon keeps running",
          "[integration][faults]") {
  TempDir dir;
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  const int tcp_port = FreeLoopbackPort();
  const int udp_port = FreeLoopbackPort();
  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  spec.sensors = {PushSensor("in.tcp", "tcp://127.0.0.1:" + std::to_string(tcp_port)),
                  PushSensor("in.udp", "udp://127.0.0.1:" + std::to_string(udp_port))};
  spec.upstream_url = "mqtt://127.0.0.1:" + std::to_string(broker.port());
  REQUIRE(WriteFile(dir.Join("sluiced.toml"), spec.ToToml()));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));
  REQUIRE(d.Start(&err));

  const std::vector<std::string> bad_lines = {
      "no_value_here", "bad/name 1", "s notanumber", "s 1 2 3", "s nan", "s inf",
      "s 1 -5", "s 12abc", "s 1e999", "s 1 12x", std::string(5000, 'x') + " 1",
      std::string(200, 'n') + " 1", "\x01\x02 3", "s 1 1.5"};
  const int kTcp = 100, kUdp = 60;
  int bad_sent = 0;
  int fd = ConnectTcp(tcp_port);
  REQUIRE(fd >= 0);
  std::string stream;
  for (int i = 0; i < kTcp; ++i) {
    stream += "tcp.ok " + std::to_string(i) + (i % 10 == 0 ? "\r\n" : "\n");
    stream += bad_lines[static_cast<size_t>(i) % bad_lines.size()] + "\n";
    ++bad_sent;
    if (i % 25 == 0) stream += "   \n";  // blank: neither good nor bad
  }
  REQUIRE(SendAll(fd, stream));
  for (int i = 0; i < kUdp; ++i) {
    std::string dgram = "udp.ok " + std::to_string(i) + "\n" +
                        bad_lines[static_cast<size_t>(i) % bad_lines.size()].substr(0, 300) + "\n";
    ++bad_sent;
    REQUIRE(SendUdp(udp_port, dgram));
    if (i % 6 == 0) {
      REQUIRE(SendUdp(udp_port, "only garbage here\n"));  // a wholly bad datagram
      ++bad_sent;
    }
    SleepMs(2);
  }
  SeqTracker tr(kStatusTopic);
  const bool all = sub.WaitFor(
      [&](const std::vector<ReceivedMessage>& m) {
        tr.Feed(m);
        return CountSensor(tr, "tcp.ok") >= kTcp && CountSensor(tr, "udp.ok") >= kUdp;
      },
      30000000);
  INFO("tcp.ok " << CountSensor(tr, "tcp.ok") << ", udp.ok " << CountSensor(tr, "udp.ok"));
  CHECK(all);
  std::set<double> tcp_values, udp_values;
  for (const auto& kv : tr.events()) {
    if (kv.second.sensor == "tcp.ok") tcp_values.insert(kv.second.value);
    else if (kv.second.sensor == "udp.ok") udp_values.insert(kv.second.value);
    else FAIL_CHECK("unexpected sensor " << kv.second.sensor << " at seq " << kv.first);
  }
  CHECK(tcp_values.size() == static_cast<size_t>(kTcp));
  CHECK(udp_values.size() == static_cast<size_t>(kUdp));
  CHECK(tr.Missing(1, kTcp + kUdp).empty());

  // The stream connection still works after all that.
  REQUIRE(SendAll(fd, "tcp.late 1\n"));
  close(fd);
  CHECK(sub.WaitFor([&](const std::vector<ReceivedMessage>& m) {
    tr.Feed(m);
    return CountSensor(tr, "tcp.late") == 1;
  }, 20000000));
  CHECK(d.Alive());
  const std::string log = d.Log();
  const size_t logged = CountOf(log, "bad line");
  WARN("bad push lines: sent " << bad_sent << " bad lines, " << logged
                               << " log lines mention them (rate limited)");
  INFO("log: " << log);
  CHECK(log.find("WARN push: bad line") != std::string::npos);
  CHECK(logged >= 1);
  CHECK(logged <= 6);  // rate limited: not one line per bad line
  CHECK(ExitedZero(d.Terminate()));
  DbSnapshot db = ReadBufferDb(spec.data_dir);
  CHECK(db.rows == static_cast<uint64_t>(kTcp + kUdp + 1));  // no bad line was committed
}

}  // namespace testing
}  // namespace sluice
