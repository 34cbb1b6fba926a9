// buffer.db on disk: schema and migrations, connection settings, the
// start-up integrity check and quarantine of a corrupt file.
//
// Schema (PRAGMA user_version = kSchemaVersion), inspectable with sqlite3:
//   events(seq INTEGER PRIMARY KEY, ts_us, sensor, kind, priority, body)
//     body: the FlatBuffers sluice.fb.Event with its seq set
//   events_evict ON events(priority, seq)      -- eviction order
//   meta(key, value)      next_seq, row_count, row_bytes
//   cursors(upstream, acked_seq, evicted_unsent)
//   counters(name, value) evicted_total, evicted_full, full_events,
//                         corrupt_recoveries, file_replacements
//   gaps(first_seq, last_seq, reason, at_us)  seqs possibly lost (see
//                         buffer/internal/seq_file.h): never reused, maybe never sent
// Migrations run in order, each in its own transaction together with its
// user_version bump: v1 events/meta/cursors, v2 counters, per-cursor
// evicted_unsent and the row_count/row_bytes accounting in meta, v3 gaps.
//
// How the file is kept bounded:
//   - Rows are accounted as length(body) + length(sensor) + kRowOverhead
//     bytes; the writer evicts down to max_bytes/max_events in the same
//     transaction that inserts, so live data stays at the limit.
//   - Deleted rows' pages go to SQLite's freelist and are reused by later
//     inserts (no auto_vacuum: the file stops growing instead of shrinking
//     and regrowing).
//   - PRAGMA max_page_count = HardCapBytes(max_bytes) / page_size is a hard
//     cap: buffer.db can never exceed it. Reaching it returns SQLITE_FULL,
//     which the writer handles like a full disk (roll back, evict 10%,
//     retry).
//   - The WAL is checkpointed every kWalAutocheckpointPages pages and
//     truncated back to kJournalSizeLimit after a checkpoint.
// Not thread-safe: each function runs on the connection's owner thread.
#pragma once

#include "buffer/internal/private.h"

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "buffer/ring.h"
#include "buffer/internal/sqlite_util.h"
#include "common/clock.h"
#include "common/status.h"

namespace sluice {

constexpr int kSchemaVersion = 3;
// Per-row overhead in the byte accounting: rowid, record header, integer
// columns, index entry and b-tree cell pointers, roughly.
constexpr uint64_t kRowOverhead = 40;
// A row's accounted bytes before kRowOverhead, as SQL over the events table.
constexpr char kRowPayloadSql[] = "length(body) + length(CAST(sensor AS BLOB))";
constexpr int kWalAutocheckpointPages = 1000;
constexpr int64_t kJournalSizeLimit = 8ll << 20;

// buffer.db may never grow past this (max_page_count).
uint64_t HardCapBytes(uint64_t max_bytes);

std::string DbPath(const std::string& data_dir);

// Bytes of every file the ring keeps in data_dir (buffer.db, its -wal and
// -shm, buffer.seq, buffer.floor, buffer.run): files named buffer.* but
// the buffer.reserve placeholder and databases set aside (.corrupt-*,
// .rescue).
uint64_t BufferFileBytes(const std::string& data_dir);

// The meta table's values; -1 where a key is absent.
struct Meta {
  int64_t next_seq = -1;
  int64_t row_count = -1;
  int64_t row_bytes = -1;
};
Status ReadMeta(sqlite3* db, Meta* out);

// The counters table by name.
Status ReadCounters(sqlite3* db, std::map<std::string, int64_t>* out);

// The gaps table in seq order; nothing before schema v3 (no table).
Status ReadGaps(sqlite3* db, std::vector<SeqGap>* out);

// Applies the migrations from the file's user_version up to
// kSchemaVersion. A version newer than kSchemaVersion is kInvalidArgument.
Status Migrate(sqlite3* db);

// synchronous from durability, WAL bounds, max_page_count from cap_bytes.
Status ConfigureWriter(sqlite3* db, Durability durability, uint64_t cap_bytes);

// Read-only connection settings for readers.
Status ConfigureReader(sqlite3* db);

// Opens `path` read-only and configured as a reader (ConfigureReader). When
// that fails because SQLite cannot create the -shm a WAL reader needs (a data
// dir this user may read but not write, daemon stopped, no WAL), the file
// alone is the database and it is opened immutable instead.
Status OpenReadOnlyDb(const std::string& path, sql::Db* db);

// PRAGMA quick_check, interrupted after budget_us (*completed = false,
// result Ok). kCorruption if it reports a problem.
Status QuickCheck(sqlite3* db, Clock& clock, int64_t budget_us,
                  bool* completed);

// Opens data_dir/buffer.db for writing, checks its header and integrity,
// and migrates it. kCorruption: the file must be quarantined. *created is
// set when the file did not exist (or was empty).
Status OpenChecked(const std::string& data_dir, Clock& clock,
                   int64_t budget_us, sql::Db* db, bool* created);

// Renames buffer.db and its -wal/-shm to buffer.db.corrupt-<UTC time>
// (plus -wal/-shm). Returns the new name in *moved_to and the number of
// quarantined databases now in data_dir in *quarantined.
Status Quarantine(const std::string& data_dir, Clock& clock,
                  std::string* moved_to, uint64_t* quarantined);

}  // namespace sluice
