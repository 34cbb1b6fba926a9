#include "buffer/internal/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <vector>

#include "common/fs.h"
#include "common/log.h"

namespace sluice {
namespace {

// Migration N brings the schema from version N-1 to N. Append only; never
// edit a released step.
std::vector<std::string> Migrations() {
  return {
      // v1: events, eviction index, seq high-water mark, cursors.
      "CREATE TABLE events(seq INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL,"
      " sensor TEXT NOT NULL, kind INTEGER NOT NULL,"
      " priority INTEGER NOT NULL, body BLOB NOT NULL);"
      "CREATE INDEX events_evict ON events(priority, seq);"
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
      " WITHOUT ROWID;"
      "INSERT INTO meta(key, value) VALUES('next_seq', 1);"
      "CREATE TABLE cursors(upstream TEXT PRIMARY KEY,"
      " acked_seq INTEGER NOT NULL) WITHOUT ROWID;",
      // v2: persisted counters, per-upstream eviction counts, and the ring's
      // row/byte accounting kept in meta (no full scan at start-up).
      "ALTER TABLE cursors ADD COLUMN evicted_unsent INTEGER NOT NULL"
      " DEFAULT 0;"
      "CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
      " WITHOUT ROWID;"
      "INSERT OR REPLACE INTO meta(key, value)"
      " SELECT 'row_count', count(*) FROM events;"
      "INSERT OR REPLACE INTO meta(key, value)"
      " SELECT 'row_bytes', coalesce(sum(" + std::string(kRowPayloadSql) + " + " +
          std::to_string(kRowOverhead) + "), 0) FROM events;",
      // v3: seq ranges that may have been handed out and lost (a start
      // that could not be sure: WAL lost, database replaced or quarantined,
      // the machine went down below durability full).
      "CREATE TABLE gaps(first_seq INTEGER PRIMARY KEY,"
      " last_seq INTEGER NOT NULL, reason TEXT NOT NULL,"
      " at_us INTEGER NOT NULL);",
  };
}

Status QueryText(sqlite3* db, const char* sql, std::string* out) {
  sql::Stmt st;
  SLUICE_RETURN_IF_ERROR(st.Prepare(db, sql));
  int rc = st.Step();
  if (rc == SQLITE_ROW) {
    const unsigned char* t = sqlite3_column_text(st.get(), 0);
    *out = t ? reinterpret_cast<const char*>(t) : "";
    rc = st.Step();
  }
  if (rc != SQLITE_DONE) return sql::Error(db, rc, sql);
  return st.Finalize();
}

struct Budget {
  Clock* clock;
  int64_t deadline_us;
};

int ProgressCallback(void* arg) {
  auto* b = static_cast<Budget*>(arg);
  return b->clock->NowMonotonicUs() >= b->deadline_us ? 1 : 0;
}

std::string UtcStamp(Clock& clock) {
  time_t t = static_cast<time_t>(clock.NowWallUs() / 1000000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool EndsWith(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

}  // namespace

uint64_t HardCapBytes(uint64_t max_bytes) {
  return max_bytes + max_bytes / 2 + (2ull << 20);
}

std::string DbPath(const std::string& data_dir) {
  return data_dir + "/buffer.db";
}

uint64_t BufferFileBytes(const std::string& data_dir) {
  uint64_t total = 0;
  DIR* d = ::opendir(data_dir.c_str());
  if (d == nullptr) return 0;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.rfind("buffer.", 0) != 0 || name == "buffer.reserve" ||
        name.find(".corrupt-") != std::string::npos || name.find(".rescue") != std::string::npos) {
      continue;
    }
    struct stat st;
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<uint64_t>(st.st_size);
    }
  }
  ::closedir(d);
  return total;
}

Status ReadMeta(sqlite3* db, Meta* out) {
  *out = Meta();
  return sql::ForEachRow(db, "SELECT key, value FROM meta", [&](sqlite3_stmt* st) {
    const std::string key = sql::ColumnText(st, 0);
    const int64_t v = sqlite3_column_int64(st, 1);
    if (key == "next_seq") out->next_seq = v;
    if (key == "row_count") out->row_count = v;
    if (key == "row_bytes") out->row_bytes = v;
  });
}

Status ReadCounters(sqlite3* db, std::map<std::string, int64_t>* out) {
  out->clear();
  return sql::ForEachRow(db, "SELECT name, value FROM counters", [&](sqlite3_stmt* st) {
    (*out)[sql::ColumnText(st, 0)] = sqlite3_column_int64(st, 1);
  });
}

Status ReadGaps(sqlite3* db, std::vector<SeqGap>* out) {
  out->clear();
  int64_t has = 0;
  SLUICE_RETURN_IF_ERROR(
      sql::QueryInt(db, "SELECT count(*) FROM sqlite_master WHERE name = 'gaps'", &has));
  if (has == 0) return Status::Ok();
  return sql::ForEachRow(
      db, "SELECT first_seq, last_seq, reason, at_us FROM gaps ORDER BY first_seq",
      [&](sqlite3_stmt* st) {
        SeqGap g;
        g.first_seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
        g.last_seq = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
        g.reason = sql::ColumnText(st, 2);
        g.at_us = sqlite3_column_int64(st, 3);
        out->push_back(std::move(g));
      });
}

Status Migrate(sqlite3* db) {
  int64_t version = 0;
  SLUICE_RETURN_IF_ERROR(sql::QueryInt(db, "PRAGMA user_version", &version));
  if (version > kSchemaVersion) {
    return InvalidArgument("buffer.db schema version " +
                           std::to_string(version) +
                           " is newer than this sluiced supports (" +
                           std::to_string(kSchemaVersion) + ")");
  }
  std::vector<std::string> steps = Migrations();
  if (version > 0 && version < kSchemaVersion) {
    // A step may scan every row (v2 counts them): said before it starts,
    // so that a long start-up tells why.
    LogInfo("buffer", "migrating buffer.db from schema version " + std::to_string(version) +
                          " to " + std::to_string(kSchemaVersion));
  }
  for (int v = static_cast<int>(version) + 1; v <= kSchemaVersion; ++v) {
    SLUICE_RETURN_IF_ERROR(sql::Exec(db, "BEGIN IMMEDIATE"));
    std::string sql = steps[static_cast<size_t>(v - 1)] +
                      "PRAGMA user_version = " + std::to_string(v) + ";";
    Status s = sql::Exec(db, sql.c_str());
    if (s.ok()) s = sql::Exec(db, "COMMIT");
    if (!s.ok()) {
      int primary = sqlite3_errcode(db) & 0xff;
      if (!sqlite3_get_autocommit(db)) {
        Status r = sql::Exec(db, "ROLLBACK");
        if (!r.ok()) LogError("buffer", "rollback: " + r.ToString());
      }
      // A plain SQL error here means the file holds tables that are not
      // ours (or not the version it claims): unusable, like corruption.
      if (primary == SQLITE_ERROR) {
        return Corruption("unexpected schema in buffer.db: " + s.message());
      }
      return s;
    }
    if (version > 0) {
      LogInfo("buffer", "migrated buffer.db schema to version " +
                            std::to_string(v));
    }
  }
  return Status::Ok();
}

Status ConfigureWriter(sqlite3* db, Durability durability,
                       uint64_t cap_bytes) {
  const char* sync = durability == Durability::kOff      ? "OFF"
                     : durability == Durability::kFull   ? "FULL"
                                                         : "NORMAL";
  std::string pragmas = std::string("PRAGMA synchronous=") + sync +
                        ";PRAGMA temp_store=MEMORY;PRAGMA cache_size=-512"
                        ";PRAGMA wal_autocheckpoint=" +
                        std::to_string(kWalAutocheckpointPages) +
                        ";PRAGMA journal_size_limit=" +
                        std::to_string(kJournalSizeLimit) + ";";
  SLUICE_RETURN_IF_ERROR(sql::Exec(db, pragmas.c_str()));
  int64_t page_size = 4096;
  SLUICE_RETURN_IF_ERROR(sql::QueryInt(db, "PRAGMA page_size", &page_size));
  if (page_size <= 0) page_size = 4096;
  uint64_t pages = cap_bytes / static_cast<uint64_t>(page_size);
  if (pages < 16) pages = 16;
  std::string cap = "PRAGMA max_page_count=" + std::to_string(pages);
  int64_t got = 0;
  // Returns the resulting cap; SQLite never sets it below the current size.
  SLUICE_RETURN_IF_ERROR(sql::QueryInt(db, cap.c_str(), &got));
  return Status::Ok();
}

Status ConfigureReader(sqlite3* db) {
  sqlite3_busy_timeout(db, 5000);
  return sql::Exec(db, "PRAGMA query_only=1;PRAGMA cache_size=-512;");
}

namespace {

// A path as a file: URI path (RFC 3986: %, ? and # escaped).
std::string UriPath(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

Status OpenReadOnlyDb(const std::string& path, sql::Db* db) {
  Status s = db->Open(path, SQLITE_OPEN_READONLY);
  if (s.ok()) s = ConfigureReader(db->get());
  if (s.ok()) s = sql::Exec(db->get(), "SELECT count(*) FROM sqlite_master");
  if (s.ok()) return s;
  struct stat st;
  if (::stat((path + "-wal").c_str(), &st) == 0 && st.st_size > 0) return s;
  SLUICE_RETURN_IF_ERROR(
      db->Open("file:" + UriPath(path) + "?immutable=1", SQLITE_OPEN_READONLY | SQLITE_OPEN_URI));
  return ConfigureReader(db->get());
}

Status QuickCheck(sqlite3* db, Clock& clock, int64_t budget_us,
                  bool* completed) {
  *completed = false;
  Budget budget{&clock, clock.NowMonotonicUs() + budget_us};
  sqlite3_progress_handler(db, 1000, ProgressCallback, &budget);
  sql::Stmt st;
  Status s = st.Prepare(db, "PRAGMA quick_check(5)");
  if (s.ok()) {
    int rc = st.Step();
    if (rc == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(st.get(), 0);
      std::string first = t ? reinterpret_cast<const char*>(t) : "";
      if (first == "ok") {
        *completed = true;
      } else {
        s = Corruption("quick_check: " + first);
      }
    } else if ((rc & 0xff) == SQLITE_INTERRUPT) {
      s = Status::Ok();  // past the budget: accepted unchecked
    } else {
      s = sql::Error(db, rc, "quick_check");
      if (s.code() != StatusCode::kCorruption && (rc & 0xff) == SQLITE_IOERR) {
        s = Corruption("quick_check: " + s.message());
      }
    }
    Status f = st.Finalize();
    if (s.ok()) s = f;
  }
  sqlite3_progress_handler(db, 0, nullptr, nullptr);
  return s;
}

Status OpenChecked(const std::string& data_dir, Clock& clock,
                   int64_t budget_us, sql::Db* db, bool* created) {
  std::string path = DbPath(data_dir);
  struct stat st;
  bool exists = ::stat(path.c_str(), &st) == 0;
  *created = !exists || st.st_size == 0;
  if (!*created) {
    char header[16] = {0};
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError("open " + path + ": " + std::strerror(errno));
    ssize_t n = ::read(fd, header, sizeof(header));
    if (::close(fd) != 0) return IoError("close " + path);
    if (n != static_cast<ssize_t>(sizeof(header)) || st.st_size < 512 ||
        std::memcmp(header, "SQLite format 3\0", 16) != 0) {
      return Corruption("not an SQLite database (bad header)");
    }
  }
  SLUICE_RETURN_IF_ERROR(
      db->Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
  sqlite3_busy_timeout(db->get(), 5000);
  // Check before anything writes to the file, so that a corrupt one is set
  // aside exactly as it was found.
  if (!*created) {
    bool completed = false;
    SLUICE_RETURN_IF_ERROR(QuickCheck(db->get(), clock, budget_us, &completed));
    if (!completed) {
      LogWarn("buffer", "integrity check stopped after its time budget (" +
                            std::to_string(budget_us / 1000) +
                            " ms); accepting buffer.db unchecked");
    }
  }
  std::string mode;
  SLUICE_RETURN_IF_ERROR(QueryText(db->get(), "PRAGMA journal_mode=WAL", &mode));
  if (mode != "wal") return IoError("cannot enable WAL (journal_mode " + mode + ")");
  return Migrate(db->get());
}

Status Quarantine(const std::string& data_dir, Clock& clock,
                  std::string* moved_to, uint64_t* quarantined) {
  std::string path = DbPath(data_dir);
  std::string base = path + ".corrupt-" + UtcStamp(clock);
  std::string target = base;
  for (int i = 1; i < 1000 && Exists(target); ++i) {
    target = base + "." + std::to_string(i);
  }
  if (::rename(path.c_str(), target.c_str()) != 0 && errno != ENOENT) {
    return IoError("rename " + path + ": " + std::strerror(errno));
  }
  for (const char* suffix : {"-wal", "-shm"}) {
    std::string from = path + suffix;
    std::string to = target + suffix;
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
      return IoError("rename " + from + ": " + std::strerror(errno));
    }
  }
  SLUICE_RETURN_IF_ERROR(FsyncDir(data_dir));
  *moved_to = target;
  *quarantined = 0;
  if (DIR* d = ::opendir(data_dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind("buffer.db.corrupt-", 0) == 0 && !EndsWith(name, "-wal") &&
          !EndsWith(name, "-shm")) {
        ++*quarantined;
      }
    }
    ::closedir(d);
  }
  if (*quarantined == 0) *quarantined = 1;
  return Status::Ok();
}

}  // namespace sluice
