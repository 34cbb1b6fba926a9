// Read-only access to data_dir/buffer.db for the CLI's history commands
// (tail, alerts, export): filtered pages of events in seq order, forward or
// backward, without holding a read transaction between pages, so memory is
// bounded by the page size and a running daemon is never held up. Opened
// with SQLITE_OPEN_READONLY and query_only: it never creates or modifies
// buffer.db (SQLite may create the -shm a WAL reader needs). Not
// thread-safe: one object per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "buffer/ring.h"
#include "buffer/sqlite_util.h"
#include "common/event.h"
#include "common/status.h"

namespace sluice {

// Which events a history command wants. Sensor globs (SQLite GLOB: * ? [..],
// case-sensitive) select readings only.
struct HistoryFilter {
  bool readings = true;
  bool alerts = true;
  std::vector<std::string> sensor_globs;
  int64_t since_us = INT64_MIN;  // ts_us >= since_us
  int64_t until_us = INT64_MAX;  // ts_us < until_us
};

// A seq range a start of sluiced could not vouch for: skipped, never reused,
// possibly handed out and lost (buffer table gaps).
struct SeqGap {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::string reason;
  int64_t at_us = 0;
};

// The retained seq range at one moment.
struct HistoryRange {
  uint64_t first_seq = 0;  // 0: the ring is empty
  uint64_t last_seq = 0;
  int64_t first_ts_us = 0;
  uint64_t last_committed = 0;  // meta next_seq - 1 (survives eviction)
  std::vector<SeqGap> gaps;     // in seq order
};

// Seqs of `gaps` at or below `upto`.
uint64_t GapSeqsUpTo(const std::vector<SeqGap>& gaps, uint64_t upto);

class HistoryDb {
 public:
  // kNotFound if there is no buffer.db; other errors when it cannot be read.
  static StatusOr<std::unique_ptr<HistoryDb>> Open(const std::string& data_dir,
                                                   const HistoryFilter& filter);
  ~HistoryDb();

  Status Range(HistoryRange* out);

  // Appends up to `max` matching events with *after < seq <= upto, in seq
  // order, and moves *after to the last seq looked at (corrupt rows are
  // skipped and counted). *done is true when none are left in that range.
  Status Forward(uint64_t* after, uint64_t upto, size_t max, std::vector<StoredEvent>* out,
                 bool* done);

  // The seq of the n-th matching event counting back from the newest
  // (n >= 1); 0 with *all = true when fewer than n match (read from the
  // start).
  Status NthFromEnd(uint64_t n, uint64_t* seq, bool* all);

  // Rows whose body failed verification and were skipped so far.
  uint64_t corrupt_rows() const { return corrupt_rows_; }
  const std::string& path() const { return path_; }
  const std::string& data_dir() const { return data_dir_; }

 private:
  HistoryDb() = default;
  Status Init(const std::string& path, const HistoryFilter& filter);

  std::string data_dir_;
  std::string path_;
  uint64_t corrupt_rows_ = 0;
  sql::Db db_;
  sql::Stmt forward_;  // after db_: finalized before the close
  sql::Stmt nth_;
  int first_glob_param_ = 0;
  std::vector<std::string> globs_;
  HistoryFilter filter_;
};


// Decodes a stored alert row; false for readings and corrupt bodies.
bool DecodeStoredAlert(const StoredEvent& e, Alert* out);

// "N events before seq X were evicted" when the retained ring starts after
// seq 1 and the request reaches back to its start; "" otherwise.
std::string EvictedNote(const HistoryRange& range, int64_t since_us);

}  // namespace sluice
