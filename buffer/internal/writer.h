// The write side of the ring: one connection, prepared statements, seq
// assignment, eviction and cursor persistence, one transaction per batch.
// Not thread-safe: writer thread only (and Ring::Open before it starts).
#pragma once

#include "buffer/internal/private.h"

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "buffer/internal/disk_space.h"
#include "buffer/ring.h"
#include "buffer/internal/seq_file.h"
#include "buffer/internal/sqlite_util.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/status.h"

namespace sluice {

// Names of the persisted counters (table counters), in WriteMeta's order.
extern const char* const kWriterCounterNames[5];

// What one transaction changes; restored when it rolls back.
struct TxnState {
  uint64_t next_seq = 1;
  uint64_t events = 0;
  uint64_t bytes = 0;
  uint64_t evicted_total = 0;
  uint64_t evicted_full = 0;
  int64_t last_ts_us = 0;
  std::vector<uint64_t> evicted_unsent;  // per upstream
};

// Everything the writer knows, published to Stats() after each commit.
struct WriterState {
  TxnState txn;
  uint64_t first_seq = 0;
  int64_t first_ts_us = 0;
  uint64_t full_events = 0;
  uint64_t corrupt_recoveries = 0;
  uint64_t commits = 0;
  uint64_t commit_failures = 0;
  uint64_t failed_events = 0;  // queued events dropped by failed commits
  uint64_t committed_events = 0;  // events committed by this process
  uint64_t committed_bytes = 0;   // their accounted bytes
  int64_t last_commit_wall_us = 0;  // wall time of the last successful commit
  std::vector<uint64_t> acked;  // as loaded / last persisted
  uint64_t file_replacements = 0;  // buffer.db deleted or replaced while open
  GapSummary gaps;                 // seqs possibly lost (table gaps)
};

class Writer {
 public:
  // Opens (creating, migrating, quarantining) data_dir/buffer.db.
  static StatusOr<std::unique_ptr<Writer>> Open(const RingOptions& options,
                                                Clock& clock);
  ~Writer();

  // Commits `batch` (may be empty: then only cursors, counters and
  // limits) with the upstream cursors `acked`, evicting to the limits in
  // the same transaction. A full disk rolls back, evicts ~10% and retries.
  // Assigns seq into each record's body. On failure *batch keeps exactly
  // the records that were not committed (in order), for the caller to
  // retry; nothing is dropped here.
  Status Commit(std::vector<Record>* batch, const std::vector<uint64_t>& acked);

  // Called after every commit: notices buffer.db deleted or replaced under
  // the open connection (checked at most once a second) and moves what the
  // connection holds into a new buffer.db (or, if that fails, starts a
  // fresh one above the seq floor). Returns true when the file was
  // switched: readers must reopen.
  bool CheckFileIdentity();

  // True if a commit with nothing new would change the file (cursors
  // moved, counters changed, over the limits).
  bool NeedsCommit(const std::vector<uint64_t>& acked) const;

  const WriterState& state() const { return state_; }
  uint64_t last_seq() const { return state_.txn.next_seq - 1; }

  // Checkpoints and truncates the WAL (best effort: readers may hold it),
  // finalizes statements, closes the connection and, if all of that
  // succeeded, removes the run marker (a clean close).
  Status Close();

 private:
  Writer(const RingOptions& options, Clock& clock);
  Status Init(bool created, uint64_t quarantined);
  // Opens, checks and configures data_dir/buffer.db into db_ (quarantining
  // a corrupt one: *quarantined counts them, *created is set).
  Status OpenDb(bool* created, uint64_t* quarantined);
  // The start-up decision of buffer/internal/seq_file.h: continue at the database's
  // next seq, or above the floor when this start cannot vouch for it.
  Status RestoreSeqFloor(bool created, bool quarantined_now);
  Status RecordGap(uint64_t first, uint64_t last, const std::string& reason);
  Status LoadGaps();
  Status RememberIdentity();
  // Finalizes statements and closes db_ (keeps the run marker).
  Status CloseDb();
  // buffer.db vanished or was replaced: copy the open database into a new
  // file (VACUUM INTO) and reopen it.
  Status Rescue();
  Status LoadState();
  Status Prepare();
  // One transaction of at most max_txn_rows_ records, with the full-disk
  // handling (make room, evict, retry).
  Status CommitChunk(std::vector<Record>* batch, const std::vector<uint64_t>& acked);
  Status TryCommit(std::vector<Record>* batch,
                   const std::vector<uint64_t>& acked);
  Status InsertAll(std::vector<Record>* batch,
                   const std::vector<uint64_t>& acked);
  Status EvictTo(uint64_t max_events, uint64_t max_bytes,
                 const std::vector<uint64_t>& acked, bool full);
  Status EvictForFull(const std::vector<uint64_t>& acked);
  // To max_events/max_bytes (counted as limit evictions), then to a byte
  // limit lowered for the disk (counted as evicted_full).
  Status EvictToLimits(const std::vector<uint64_t>& acked);
  // Sizes the WAL and the free-space headroom from the file system.
  Status SizeForDisk();
  // Full disk: gives up the reserve file and truncates the WAL.
  void MakeRoom();
  // After every commit: holds the ring below what the disk can take (keeping
  // headroom_bytes_ of room: free blocks, free pages in buffer.db, the WAL
  // file's blocks), lets it grow back into room beyond that, and restores
  // the reserve when the disk has room again.
  void WatchSpace();
  Status WriteMeta(const std::vector<uint64_t>& acked);
  // BEGIN, body(), meta and cursors, COMMIT; on failure ROLLBACK and the
  // in-memory state as it was. On success the cursors and counters count
  // as saved.
  Status InTransaction(const std::vector<uint64_t>& acked, const std::function<Status()>& body);
  Status RefreshFirst();
  Status Rollback();
  bool OverLimits() const;

  RingOptions options_;
  Clock& clock_;
  SeqReservation seq_;
  RunMarker run_;
  DiskSpace disk_;
  // The byte limit in force: max_bytes, lowered after the disk filled up
  // and raised back as free space returns.
  uint64_t cap_bytes_;
  uint64_t headroom_bytes_ = 0;  // free space kept for the WAL and checkpoints
  uint64_t wal_bytes_ = 0;       // the WAL between two checkpoints
  uint64_t page_size_ = 4096;
  size_t max_txn_rows_ = 16000;  // rows per transaction (bounds the WAL)
  int64_t next_space_check_us_ = 0;  // next look at the reserve
  int64_t full_hold_until_us_ = 0;   // after SQLITE_FULL: the byte limit stays down
  bool space_low_logged_ = false;
  sql::Db db_;
  WriterState state_;
  std::vector<uint64_t> saved_unsent_;   // evicted_unsent as persisted
  uint64_t saved_counters_[5] = {0, 0, 0, 0, 0};
  dev_t db_dev_ = 0;
  ino_t db_ino_ = 0;
  int64_t next_identity_check_us_ = 0;
  bool force_ = false;  // persist meta/counters at the next commit
  RateLimitedLog full_log_;
  RateLimitedLog fail_log_;

  sql::Stmt begin_, commit_, rollback_, insert_, scan_, delete_range_;
  sql::Stmt meta_, cursor_, counter_, first_;
};

}  // namespace sluice
