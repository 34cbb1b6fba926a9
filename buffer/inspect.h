// Read-only inspection of data_dir/buffer.db for `sluice buffer stats` and
// `sluice buffer check` (CONTRACT.md "sluice (CLI)"). Both open the file
// read-only and read it in one read transaction, so a running daemon keeps
// writing beside them; neither creates, repairs, quarantines or rewrites
// anything (SQLite may create the -shm a WAL reader needs): sluiced does
// that at its next start. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "buffer/ring.h"
#include "common/status.h"

namespace sluice {

// What buffer.db holds, as its tables say.
struct BufferStats {
  std::string path;             // data_dir/buffer.db
  int64_t file_bytes = 0;
  int64_t wal_bytes = 0;        // 0 without a -wal file
  int64_t schema_version = 0;
  int64_t events = 0;           // accounted rows and bytes (see ring.h)
  int64_t bytes = 0;
  int64_t first_seq = 0, last_seq = 0;  // 0 when empty
  int64_t first_ts_us = 0, last_ts_us = 0;
  int64_t last_committed_seq = 0;  // survives eviction
  // Persisted counters (RingStats): evictions, full disks, databases
  // quarantined as corrupt.
  int64_t evicted_total = 0;
  int64_t evicted_full = 0;
  int64_t full_events = 0;
  int64_t corrupt_recoveries = 0;
  std::vector<UpstreamCursorStats> upstreams;  // by name
};

// Fills *out. Errors (no such file, unreadable) have messages starting with
// the file's path.
Status ReadBufferStats(const std::string& data_dir, BufferStats* out);

// The findings of an integrity check. Each problem makes the check fail;
// notes are worth knowing (evictions, recorded possible-loss ranges, seq
// jumps) but not failures.
struct BufferCheck {
  std::string path;
  bool quick = false;           // quick_check instead of integrity_check
  int64_t schema_version = 0;
  int64_t events = 0, first_seq = 0, last_seq = 0, next_seq = 0;
  std::vector<std::string> checks;    // what was checked and found fine
  std::vector<std::string> problems;
  std::vector<std::string> notes;
  std::vector<SeqGap> gaps;           // recorded possible-loss ranges
  bool ok() const { return problems.empty(); }
};

// Checks the file header, SQLite's integrity (or quick) check, the schema
// version and tables, the ring's accounting, every event body, seq
// continuity against the recorded gaps, the upstream cursors and both
// copies of the seq floor (buffer.seq, buffer.floor). Returns an error only
// when buffer.db does not exist or cannot be looked at ("PATH: reason");
// everything else is a finding in *out.
Status CheckBuffer(const std::string& data_dir, bool quick, BufferCheck* out);

// The text of one seq-floor copy (buffer.seq, buffer.floor) that reserves
// seqs up to `value`, as sluiced writes it: for tools that restore a floor.
std::string SeqFloorText(uint64_t value);

}  // namespace sluice
