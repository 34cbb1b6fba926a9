// Read-only history of data_dir/buffer.db without a running Ring, for the
// CLI's history commands (tail, alerts, export): the retained range with
// its evicted and possibly-lost seqs, and filtered pages of events in seq
// order, forward or backward, without holding a read transaction between
// pages, so memory is bounded by the page size and a running daemon is never
// held up. Read-only: it never creates or modifies buffer.db (SQLite may
// create the -shm a WAL reader needs). Not thread-safe: one object per
// thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "buffer/ring.h"
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

// The retained seq range at one moment.
struct HistoryRange {
  uint64_t first_seq = 0;  // 0: the ring is empty
  uint64_t last_seq = 0;
  int64_t first_ts_us = 0;
  uint64_t last_committed = 0;  // the newest seq ever committed (survives eviction)
  std::vector<SeqGap> gaps;     // in seq order
};

// Seqs of `gaps` at or below `upto`.
uint64_t GapSeqsUpTo(const std::vector<SeqGap>& gaps, uint64_t upto);

class HistoryReader {
 public:
  // kNotFound if there is no buffer.db; other errors when it cannot be read.
  // Its error messages start with the file's path.
  static StatusOr<std::unique_ptr<HistoryReader>> Open(const std::string& data_dir,
                                                       const HistoryFilter& filter);
  ~HistoryReader();
  HistoryReader(const HistoryReader&) = delete;
  HistoryReader& operator=(const HistoryReader&) = delete;

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
  uint64_t corrupt_rows() const;
  const std::string& path() const;
  const std::string& data_dir() const;

 private:
  struct Impl;  // the read connection and its statements
  explicit HistoryReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Decodes a stored alert row; false for readings and corrupt bodies.
bool DecodeStoredAlert(const StoredEvent& e, Alert* out);

// "N events before seq X were evicted" when the retained ring starts after
// seq 1 and the request reaches back to its start; "" otherwise.
std::string EvictedNote(const HistoryRange& range, int64_t since_us);

}  // namespace sluice
