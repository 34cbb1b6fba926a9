// The integrity check behind `sluice buffer check` (buffer/inspect.h): a
// read-only look at buffer.db in one read transaction (a running daemon
// keeps writing beside it) that never quarantines, repairs or rewrites
// anything; the daemon does that at start.
#include <fcntl.h>
#include <flatbuffers/flatbuffers.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "buffer/codec.h"
#include "buffer/history.h"
#include "buffer/inspect.h"
#include "buffer/internal/seq_file.h"
#include "buffer/internal/sqlite_util.h"
#include "buffer/internal/store.h"
#include "common/units.h"
#include "schemas/sluice_generated.h"

namespace sluice {
namespace {

constexpr size_t kMaxListed = 10;


// Runs `sql`, calling row(stmt) per result row. False on error (*error).
bool Each(sqlite3* db, const std::string& sql, std::string* error,
          const std::function<void(sqlite3_stmt*)>& row) {
  Status s = sql::ForEachRow(db, sql, row);
  if (!s.ok()) *error = s.message();
  return s.ok();
}

bool HeaderOk(const std::string& path, std::string* why) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *why = std::strerror(errno);
    return false;
  }
  char header[16] = {0};
  ssize_t n = ::read(fd, header, sizeof header);
  struct stat st;
  bool sized = ::fstat(fd, &st) == 0 && st.st_size >= 512;
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof header) || !sized ||
      std::memcmp(header, "SQLite format 3\0", 16) != 0) {
    *why = "not an SQLite database (bad header or shorter than one page)";
    return false;
  }
  return true;
}

void CheckIntegrity(sqlite3* db, BufferCheck* r) {
  std::vector<std::string> lines;
  std::string error;
  const char* pragma = r->quick ? "PRAGMA quick_check(20)" : "PRAGMA integrity_check(20)";
  bool ok = Each(db, pragma, &error,
                 [&](sqlite3_stmt* st) { lines.push_back(sql::ColumnText(st, 0)); });
  if (!ok) {
    r->problems.push_back(std::string(r->quick ? "quick_check" : "integrity_check") +
                          " failed: " + error);
  } else if (lines.size() == 1 && lines[0] == "ok") {
    r->checks.push_back(r->quick ? "quick_check" : "integrity_check");
  } else {
    for (const std::string& l : lines) r->problems.push_back("integrity: " + l);
  }
}

// Schema version, tables, meta accounting, seq high-water mark.
bool CheckSchema(sqlite3* db, BufferCheck* r) {
  std::string error;
  Status s = sql::QueryInt(db, "PRAGMA user_version", &r->schema_version);
  if (!s.ok()) {
    r->problems.push_back("cannot read the schema: " + s.message());
    return false;
  }
  if (r->schema_version > kSchemaVersion || r->schema_version < 1) {
    r->problems.push_back("schema version " + std::to_string(r->schema_version) +
                          " (this sluice knows 1.." + std::to_string(kSchemaVersion) + ")");
    return false;
  }
  if (r->schema_version < kSchemaVersion) {
    r->notes.push_back("schema v" + std::to_string(r->schema_version) +
                       ": sluiced migrates it to v" + std::to_string(kSchemaVersion) + " at start");
  }
  std::vector<std::string> missing = {"events", "meta", "cursors"};
  if (r->schema_version >= 2) missing.push_back("counters");
  bool ok = Each(db, "SELECT name FROM sqlite_master WHERE type = 'table'", &error,
                 [&](sqlite3_stmt* st) {
                   std::string name = sql::ColumnText(st, 0);
                   for (size_t i = 0; i < missing.size(); ++i) {
                     if (missing[i] == name) missing.erase(missing.begin() + static_cast<long>(i));
                   }
                 });
  if (!ok || !missing.empty()) {
    r->problems.push_back(ok ? "missing table " + missing.front() : "schema: " + error);
    return false;
  }
  r->checks.push_back("schema v" + std::to_string(r->schema_version));
  ok = Each(db, "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM events", &error,
            [&](sqlite3_stmt* st) {
              r->events = sqlite3_column_int64(st, 0);
              r->first_seq = sqlite3_column_int64(st, 1);
              r->last_seq = sqlite3_column_int64(st, 2);
            });
  Meta meta;
  s = ReadMeta(db, &meta);
  if (!ok || !s.ok()) {
    r->problems.push_back("events: " + (ok ? s.message() : error));
    return false;
  }
  r->next_seq = meta.next_seq == -1 ? 0 : meta.next_seq;
  if (r->next_seq <= r->last_seq) {
    r->problems.push_back("meta next_seq " + std::to_string(r->next_seq) +
                          " is not above the newest seq " + std::to_string(r->last_seq) +
                          " (seqs would be reused)");
  } else {
    r->checks.push_back("next_seq " + std::to_string(r->next_seq) + " above the newest seq");
  }
  if (r->schema_version >= 2) {
    int64_t real_bytes = 0;
    const int64_t count = meta.row_count, bytes = meta.row_bytes;
    s = sql::QueryInt(db,
                      ("SELECT coalesce(sum(" + std::string(kRowPayloadSql) + " + " +
                       std::to_string(kRowOverhead) + "), 0) FROM events")
                          .c_str(),
                      &real_bytes);
    if (!s.ok()) {
      r->problems.push_back("meta: " + s.message());
    } else if (count != r->events || bytes != real_bytes) {
      r->problems.push_back("ring accounting: meta says " + std::to_string(count) + " events, " +
                            std::to_string(bytes) + " bytes; the table holds " +
                            std::to_string(r->events) + " events, " + std::to_string(real_bytes) +
                            " bytes");
    } else {
      r->checks.push_back("accounting: " + std::to_string(count) + " events, " +
                          std::to_string(bytes) + " bytes");
    }
  }
  return true;
}

// The recorded possible-loss ranges (schema v3 and later).
void LoadGaps(sqlite3* db, BufferCheck* r) {
  Status s = ReadGaps(db, &r->gaps);
  if (!s.ok()) r->problems.push_back("gaps: " + s.message());
}

// Every body verifies and agrees with its row; seq gaps above the oldest
// retained reading (eviction takes oldest readings first, so gaps below it
// are evictions) are listed as notes: a power loss below durability full
// makes seq jump on purpose.
void CheckEvents(sqlite3* db, BufferCheck* r) {
  std::string error;
  uint64_t bad = 0, unnumbered = 0;
  int64_t first_bad = 0, first_unnumbered = 0, prev = 0, min_reading = 0, jumps = 0;
  std::vector<std::string> jump_text;
  bool ok = Each(
      db, "SELECT seq, kind, sensor, body FROM events ORDER BY seq", &error, [&](sqlite3_stmt* st) {
        int64_t seq = sqlite3_column_int64(st, 0);
        // The ring hands out seqs from 1: a row below that is corrupt, and
        // left out of the continuity check (its arithmetic assumes seq >= 1).
        if (seq < 1) {
          if (unnumbered++ == 0) first_unnumbered = seq;
          return;
        }
        int kind = sqlite3_column_int(st, 1);
        const void* body = sqlite3_column_blob(st, 3);
        size_t len = static_cast<size_t>(sqlite3_column_bytes(st, 3));
        bool good = VerifyEncodedEvent(body, len);
        if (good) {
          const fb::Event* e = flatbuffers::GetRoot<fb::Event>(body);
          good = static_cast<int64_t>(e->seq()) == seq && static_cast<int>(e->kind()) == kind;
        }
        if (!good && bad++ == 0) first_bad = seq;
        if (kind == static_cast<int>(EventKind::kReading) && min_reading == 0) min_reading = seq;
        if (prev != 0 && seq > prev + 1 && min_reading != 0 && prev >= min_reading &&
            GapSeqsUpTo(r->gaps, static_cast<uint64_t>(seq - 1)) -
                    GapSeqsUpTo(r->gaps, static_cast<uint64_t>(prev)) <
                static_cast<uint64_t>(seq - prev - 1)) {
          if (jumps++ < static_cast<int64_t>(kMaxListed)) {
            jump_text.push_back(std::to_string(prev) + " -> " + std::to_string(seq));
          }
        }
        prev = seq;
      });
  if (!ok) {
    r->problems.push_back("reading events: " + error);
    return;
  }
  if (unnumbered > 0) {
    r->problems.push_back(std::to_string(unnumbered) + " events with a seq below 1 (first: " +
                          std::to_string(first_unnumbered) + ")");
  }
  if (bad > 0) {
    r->problems.push_back(std::to_string(bad) + " events with a corrupt body (first at seq " +
                          std::to_string(first_bad) + ")");
  } else if (unnumbered == 0) {
    r->checks.push_back("all " + std::to_string(r->events) + " event bodies verify");
  }
  if (jumps > 0) {
    std::string list;
    for (const std::string& j : jump_text) list += (list.empty() ? "" : ", ") + j;
    r->notes.push_back(std::to_string(jumps) + " seq jumps among retained readings (" + list +
                       ") not explained by a recorded possible-loss range");
  } else if (r->events > 0) {
    r->checks.push_back("seq continuous from the oldest retained reading");
  }
  for (const SeqGap& g : r->gaps) {
    r->notes.push_back("seqs " + std::to_string(g.first_seq) + ".." + std::to_string(g.last_seq) +
                       " skipped as possibly lost at " + FormatUtc(g.at_us, false) + ": " +
                       g.reason);
  }
  if (r->first_seq > 1) {
    const uint64_t before = static_cast<uint64_t>(r->first_seq - 1);
    const uint64_t lost = GapSeqsUpTo(r->gaps, before);
    if (before > lost) {
      r->notes.push_back(std::to_string(before - lost) + " events before seq " +
                         std::to_string(r->first_seq) + " were evicted");
    }
  }
}

void CheckCursors(sqlite3* db, const std::string& data_dir, BufferCheck* r) {
  std::string error;
  const int64_t last_committed = r->next_seq - 1;
  size_t n = 0;
  bool ok = Each(db, "SELECT upstream, acked_seq FROM cursors ORDER BY upstream", &error,
                 [&](sqlite3_stmt* st) {
                   ++n;
                   int64_t acked = sqlite3_column_int64(st, 1);
                   if (acked < 0 || acked > last_committed) {
                     r->problems.push_back("cursor " + sql::ColumnText(st, 0) + ": acked seq " +
                                           std::to_string(acked) + " beyond the last committed " +
                                           std::to_string(last_committed));
                   }
                 });
  if (!ok)
    r->problems.push_back("cursors: " + error);
  else
    r->checks.push_back(std::to_string(n) + " upstream cursors within the committed range");
  // The seq floor: both copies (buffer/internal/seq_file.h), each checked alone.
  for (const char* name : {"buffer.seq", "buffer.floor"}) {
    const std::string path = data_dir + "/" + name;
    std::ifstream in(path);
    if (!in) {
      if (errno != ENOENT) r->notes.push_back(std::string(name) + ": " + std::strerror(errno));
      continue;
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    uint64_t reserved = 0;
    if (!SeqReservation::ParseLine(text, &reserved)) {
      r->problems.push_back(std::string(name) + " is malformed (sluiced rewrites it at start)");
    } else if (static_cast<int64_t>(reserved) < last_committed) {
      r->problems.push_back(std::string(name) + " reserves up to " + std::to_string(reserved) +
                            ", below the last committed seq " + std::to_string(last_committed));
    } else {
      r->checks.push_back(std::string(name) + " reservation covers the committed seqs");
    }
  }
}

}  // namespace

Status CheckBuffer(const std::string& data_dir, bool quick, BufferCheck* r) {
  *r = BufferCheck();
  r->path = DbPath(data_dir);
  r->quick = quick;
  struct stat sb;
  if (::stat(r->path.c_str(), &sb) != 0) {
    const StatusCode code = errno == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError;
    return Status(code, r->path + ": " + std::strerror(errno));
  }
  std::string why;
  if (!HeaderOk(r->path, &why)) {
    r->problems.push_back(why);
    return Status::Ok();
  }
  sql::Db db;
  Status s = OpenReadOnlyDb(r->path, &db);
  if (s.ok()) s = sql::Exec(db.get(), "BEGIN");  // one snapshot for every check
  if (!s.ok()) {
    r->problems.push_back("cannot read: " + s.message());
    return Status::Ok();
  }
  CheckIntegrity(db.get(), r);
  if (CheckSchema(db.get(), r)) {
    LoadGaps(db.get(), r);
    CheckEvents(db.get(), r);
    CheckCursors(db.get(), data_dir, r);
  }
  (void)sql::Exec(db.get(), "COMMIT");
  return Status::Ok();
}

}  // namespace sluice
