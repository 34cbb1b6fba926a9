// `sluice buffer stats` (CONTRACT.md "sluice (CLI)"): what buffer.db holds,
// read with a read-only connection in one read transaction.
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "agent/cli_commands.h"
#include "agent/cli_format.h"
#include "agent/history.h"
#include "common/json.h"
#include "common/units.h"

namespace sluice {
namespace cli {
namespace {

std::string TimeOrDash(int64_t ts_us) {
  return ts_us == 0 ? "-" : FormatUtc(ts_us, false);
}

struct Cursor {
  std::string upstream;
  int64_t acked_seq = 0;
  int64_t evicted_unsent = 0;
};

struct BufferStats {
  std::string path;
  int64_t file_bytes = 0;
  int64_t wal_bytes = 0;
  int64_t schema_version = 0;
  int64_t events = 0;
  int64_t bytes = 0;
  int64_t first_seq = 0, last_seq = 0;
  int64_t first_ts = 0, last_ts = 0;
  int64_t next_seq = 1;
  std::map<std::string, int64_t> counters;
  std::vector<Cursor> cursors;
};

// Runs `sql` and calls `row` for each result row. Returns false (with
// *error) on failure.
template <typename Fn>
bool Query(sqlite3* db, const char* sql, std::string* error, Fn row) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    *error = sqlite3_errmsg(db);
    return false;
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
  bool ok = rc == SQLITE_DONE;
  if (!ok) *error = sqlite3_errmsg(db);
  sqlite3_finalize(st);
  return ok;
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

bool ReadStats(const std::string& data_dir, BufferStats* s, std::string* error) {
  s->path = data_dir + "/buffer.db";
  struct stat st;
  if (stat(s->path.c_str(), &st) != 0) {
    *error = s->path + ": " + std::strerror(errno);
    return false;
  }
  s->file_bytes = st.st_size;
  s->wal_bytes = FileSize(s->path + "-wal");
  sql::Db conn;
  Status open = OpenReadOnlyDb(s->path, &conn);
  if (!open.ok()) {
    *error = s->path + ": " + open.message();
    return false;
  }
  sqlite3* db = conn.get();
  bool ok =
      Query(db, "PRAGMA user_version", error,
            [&](sqlite3_stmt* q) { s->schema_version = sqlite3_column_int64(q, 0); }) &&
      Query(db, "BEGIN", error, [](sqlite3_stmt*) {}) &&
      Query(db, "SELECT key, value FROM meta", error,
            [&](sqlite3_stmt* q) {
              std::string k = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
              int64_t v = sqlite3_column_int64(q, 1);
              if (k == "row_count") s->events = v;
              else if (k == "row_bytes") s->bytes = v;
              else if (k == "next_seq") s->next_seq = v;
            }) &&
      Query(db, "SELECT min(seq), max(seq) FROM events", error,
            [&](sqlite3_stmt* q) {
              s->first_seq = sqlite3_column_int64(q, 0);
              s->last_seq = sqlite3_column_int64(q, 1);
            }) &&
      Query(db, "SELECT (SELECT ts_us FROM events ORDER BY seq LIMIT 1),"
                " (SELECT ts_us FROM events ORDER BY seq DESC LIMIT 1)",
            error,
            [&](sqlite3_stmt* q) {
              s->first_ts = sqlite3_column_int64(q, 0);
              s->last_ts = sqlite3_column_int64(q, 1);
            }) &&
      Query(db, "SELECT name, value FROM counters", error,
            [&](sqlite3_stmt* q) {
              s->counters[reinterpret_cast<const char*>(sqlite3_column_text(q, 0))] =
                  sqlite3_column_int64(q, 1);
            }) &&
      Query(db, "SELECT upstream, acked_seq, evicted_unsent FROM cursors ORDER BY upstream",
            error, [&](sqlite3_stmt* q) {
              s->cursors.push_back({reinterpret_cast<const char*>(sqlite3_column_text(q, 0)),
                                    sqlite3_column_int64(q, 1), sqlite3_column_int64(q, 2)});
            });
  if (!ok) *error = s->path + ": " + *error;
  return ok;
}

void PrintStats(const BufferStats& s, bool json) {
  // The last committed seq is next_seq - 1 even when eviction emptied the ring.
  int64_t last_committed = s.next_seq - 1;
  auto counter = [&](const char* name) {
    auto it = s.counters.find(name);
    return it == s.counters.end() ? int64_t{0} : it->second;
  };
  if (json) {
    std::printf("{\"path\":%s,\"schema_version\":%lld,\"file_bytes\":%lld,\"wal_bytes\":%lld,"
                "\"events\":%lld,\"bytes\":%lld,\"first_seq\":%lld,\"last_seq\":%lld,"
                "\"last_committed_seq\":%lld,\"first_ts_us\":%lld,\"last_ts_us\":%lld,"
                "\"evicted_total\":%lld,\"evicted_full\":%lld,\"full_events\":%lld,"
                "\"corrupt_recoveries\":%lld,\"upstreams\":[",
                JsonString(s.path).c_str(), (long long)s.schema_version, (long long)s.file_bytes,
                (long long)s.wal_bytes, (long long)s.events, (long long)s.bytes,
                (long long)s.first_seq, (long long)s.last_seq, (long long)last_committed,
                (long long)s.first_ts, (long long)s.last_ts, (long long)counter("evicted_total"),
                (long long)counter("evicted_full"), (long long)counter("full_events"),
                (long long)counter("corrupt_recoveries"));
    for (size_t i = 0; i < s.cursors.size(); ++i) {
      const Cursor& c = s.cursors[i];
      std::printf("%s{\"name\":%s,\"acked_seq\":%lld,\"backlog\":%lld,\"evicted_unsent\":%lld}",
                  i ? "," : "", JsonString(c.upstream).c_str(), (long long)c.acked_seq,
                  (long long)std::max<int64_t>(0, last_committed - c.acked_seq),
                  (long long)c.evicted_unsent);
    }
    std::printf("]}\n");
    return;
  }
  std::printf("buffer      %s (schema v%lld)\n", s.path.c_str(), (long long)s.schema_version);
  std::printf("file        %.1f MiB (+ %.1f MiB WAL)\n", s.file_bytes / 1048576.0,
              s.wal_bytes / 1048576.0);
  std::printf("events      %lld (%.1f MiB accounted)\n", (long long)s.events, s.bytes / 1048576.0);
  std::printf("seq         %lld .. %lld (last committed %lld)\n", (long long)s.first_seq,
              (long long)s.last_seq, (long long)last_committed);
  std::printf("time        %s .. %s\n", TimeOrDash(s.first_ts).c_str(), TimeOrDash(s.last_ts).c_str());
  std::printf("evicted     %lld (%lld for a full disk)\n", (long long)counter("evicted_total"),
              (long long)counter("evicted_full"));
  std::printf("full disk   %lld times\n", (long long)counter("full_events"));
  std::printf("corrupt     %lld databases quarantined\n", (long long)counter("corrupt_recoveries"));
  for (const Cursor& c : s.cursors) {
    std::printf("upstream    %-16s acked %lld, backlog %lld, evicted before sending %lld\n",
                c.upstream.c_str(), (long long)c.acked_seq,
                (long long)std::max<int64_t>(0, last_committed - c.acked_seq),
                (long long)c.evicted_unsent);
  }
}

}  // namespace

int RunBufferStats(const CommandSpec&, Globals& globals, const Parsed&) {
  std::string data_dir;
  if (int rc = DataDirOrExit(globals, &data_dir); rc >= 0) return rc;
  BufferStats s;
  std::string error;
  if (!ReadStats(data_dir, &s, &error)) {
    std::fprintf(stderr, "sluice: %s\n", error.c_str());
    return kExitFailure;
  }
  IgnoreSigpipe();
  PrintStats(s, globals.json);
  return FinishStdout();
}

}  // namespace cli
}  // namespace sluice
