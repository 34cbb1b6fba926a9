// Helpers for the ring tests: temp dirs, records, direct SQLite queries.
#pragma once

#include <dirent.h>
#include <ftw.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "buffer/codec.h"
#include "buffer/ring.h"
#include "common/event.h"
#include "schemas/sluice_generated.h"

namespace sluice {
namespace testing {

// A mkdtemp directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/sluice-buffer-test-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    if (p != nullptr) path_ = p;
  }
  ~TempDir() {
    if (!path_.empty()) {
      ::nftw(path_.c_str(),
             [](const char* f, const struct stat*, int, struct FTW*) {
               return ::remove(f);
             },
             16, FTW_DEPTH | FTW_PHYS);
    }
  }
  const std::string& path() const { return path_; }
  std::string db() const { return path_ + "/buffer.db"; }

 private:
  std::string path_;
};

inline Record MakeReading(int i, const std::string& sensor = "boiler.temp") {
  Reading r;
  r.sensor = sensor;
  r.ts_us = 1764075600000000 + i;
  r.value = i * 0.5;
  r.unit = "C";
  Record rec;
  rec.kind = static_cast<int>(EventKind::kReading);
  rec.priority = kReadingPriority;
  rec.ts_us = r.ts_us;
  rec.sensor = r.sensor;
  rec.body = EncodeReading(r);
  return rec;
}

inline Record MakeAlert(int i, const std::string& rule = "overheat") {
  Alert a;
  a.rule = rule;
  a.state = "firing";
  a.severity = "critical";
  a.ts_us = 1764075600000000 + i;
  a.value = i;
  a.message = "hot";
  a.labels = {{"site", "plant-1"}};
  Record rec;
  rec.kind = static_cast<int>(EventKind::kAlert);
  rec.priority = kAlertPriority;
  rec.ts_us = a.ts_us;
  rec.sensor = a.rule;
  rec.body = EncodeAlert(a);
  return rec;
}

inline RingOptions Options(const std::string& dir) {
  RingOptions o;
  o.data_dir = dir;
  o.max_events = 1000000;
  o.max_bytes = 64ull << 20;
  o.commit_interval_us = 2000;
  o.queue_capacity = 65536;
  o.upstreams = {"cloud"};
  return o;
}

inline uint64_t BodySeq(const std::string& body) {
  return flatbuffers::GetRoot<fb::Event>(body.data())->seq();
}

// Everything in the ring, via a fresh reader.
inline std::vector<StoredEvent> ReadAll(Ring& ring) {
  std::vector<StoredEvent> out;
  auto reader = ring.NewReader();
  if (!reader.ok()) return out;
  uint64_t after = 0;
  for (int i = 0; i < 100000; ++i) {
    size_t before = out.size();
    if (!(*reader)->ReadAfter(after, 1000, &out).ok()) break;
    if (out.size() == before) break;
    after = out.back().seq;
  }
  return out;
}

// One integer from a query on a separate connection (-1 on error).
inline int64_t QueryInt(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  int64_t v = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
      SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return v;
}

// Runs SQL on a read-write connection; returns the SQLite result code.
inline int ExecSql(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open(db_path.c_str(), &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return rc;
}

inline uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

inline bool CopyFile(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return false;
  std::ofstream out(to, std::ios::binary | std::ios::trunc);
  out << in.rdbuf();
  return static_cast<bool>(out);
}

inline std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
  }
  return names;
}

}  // namespace testing
}  // namespace sluice
