// `sluice buffer stats`' figures (buffer/inspect.h); the check is in
// inspect_check.cpp.
#include "buffer/inspect.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "buffer/internal/seq_file.h"
#include "buffer/internal/sqlite_util.h"
#include "buffer/internal/store.h"

namespace sluice {
namespace {

int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

// Every figure from one snapshot. Errors carry SQLite's own message.
Status ReadTables(sqlite3* db, BufferStats* s) {
  Status st = sql::QueryInt(db, "PRAGMA user_version", &s->schema_version);
  if (st.ok()) st = sql::Exec(db, "BEGIN");
  Meta meta;
  if (st.ok()) st = ReadMeta(db, &meta);
  if (st.ok()) {
    st = sql::ForEachRow(db, "SELECT min(seq), max(seq) FROM events", [&](sqlite3_stmt* q) {
      s->first_seq = sqlite3_column_int64(q, 0);
      s->last_seq = sqlite3_column_int64(q, 1);
    });
  }
  if (st.ok()) {
    st = sql::ForEachRow(db,
                         "SELECT (SELECT ts_us FROM events ORDER BY seq LIMIT 1),"
                         " (SELECT ts_us FROM events ORDER BY seq DESC LIMIT 1)",
                         [&](sqlite3_stmt* q) {
                           s->first_ts_us = sqlite3_column_int64(q, 0);
                           s->last_ts_us = sqlite3_column_int64(q, 1);
                         });
  }
  std::map<std::string, int64_t> counters;
  if (st.ok()) st = ReadCounters(db, &counters);
  if (st.ok()) {
    st = sql::ForEachRow(
        db, "SELECT upstream, acked_seq, evicted_unsent FROM cursors ORDER BY upstream",
        [&](sqlite3_stmt* q) {
          s->upstreams.push_back({sql::ColumnText(q, 0),
                                  static_cast<uint64_t>(sqlite3_column_int64(q, 1)),
                                  static_cast<uint64_t>(sqlite3_column_int64(q, 2))});
        });
  }
  if (!st.ok()) return Status(st.code(), sqlite3_errmsg(db));
  (void)sql::Exec(db, "COMMIT");  // a read transaction: nothing to lose
  s->events = meta.row_count == -1 ? 0 : meta.row_count;
  s->bytes = meta.row_bytes == -1 ? 0 : meta.row_bytes;
  // The last committed seq is next_seq - 1 even when eviction emptied the ring.
  s->last_committed_seq = (meta.next_seq == -1 ? 1 : meta.next_seq) - 1;
  auto counter = [&](const char* name) {
    auto it = counters.find(name);
    return it == counters.end() ? int64_t{0} : it->second;
  };
  s->evicted_total = counter("evicted_total");
  s->evicted_full = counter("evicted_full");
  s->full_events = counter("full_events");
  s->corrupt_recoveries = counter("corrupt_recoveries");
  return Status::Ok();
}

}  // namespace

Status ReadBufferStats(const std::string& data_dir, BufferStats* s) {
  *s = BufferStats();
  s->path = DbPath(data_dir);
  struct stat st;
  if (stat(s->path.c_str(), &st) != 0) {
    const StatusCode code = errno == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError;
    return Status(code, s->path + ": " + std::strerror(errno));
  }
  s->file_bytes = st.st_size;
  s->wal_bytes = FileSize(s->path + "-wal");
  sql::Db conn;
  Status read = OpenReadOnlyDb(s->path, &conn);
  if (read.ok()) read = ReadTables(conn.get(), s);
  if (!read.ok()) return Status(read.code(), s->path + ": " + read.message());
  return Status::Ok();
}

std::string SeqFloorText(uint64_t value) { return SeqReservation::FormatLine(value); }

}  // namespace sluice
