// The durable ring: one SQLite file `data_dir/buffer.db` (WAL) holding every
// committed event until the ring's limits evict it.
//
// Threads: producers (drivers, rules) call Append from any thread; one
// writer thread (owned by Ring) group-commits what arrived within
// `commit_interval`, assigns seq, evicts, and persists upstream cursors.
// Uplinks read through their own RingReader (own connection) and report
// acknowledgements with Ack().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace sluice {

enum class Durability { kOff, kNormal, kFull };

struct RingOptions {
  std::string data_dir;                  // holds buffer.db
  uint64_t max_events = 1000000;
  uint64_t max_bytes = 256ull << 20;
  Durability durability = Durability::kNormal;
  int64_t commit_interval_us = 20000;
  // durability normal: the longest a committed event waits for an fsync
  // (done by a thread of its own, off the ingest path). 0: only SQLite's
  // own syncs at checkpoints.
  int64_t sync_interval_us = 10000000;
  // Seqs reserved per write of buffer.seq (tests lower it).
  uint64_t seq_reserve_block = 1000000;
  size_t queue_capacity = 65536;         // events waiting for the writer
  // Bytes of events waiting for the writer (RecordBytes each): what bounds
  // the queue's memory under a burst. A lone event always fits.
  size_t queue_max_bytes = 1u << 20;
  int64_t integrity_check_budget_us = 5000000;  // start-up quick_check time box
  std::vector<std::string> upstreams;    // one persisted cursor each
  // Hard cap on buffer.db's size (PRAGMA max_page_count); reaching it is
  // handled like a full disk. 0: derived from max_bytes (HardCapBytes in
  // buffer/internal/store.h, 1.5 x max_bytes + 2 MiB).
  uint64_t max_file_bytes = 0;
};

// One event ready to be committed. `body` is from EncodeReading/EncodeAlert.
struct Record {
  int kind = 0;       // EventKind
  int priority = 0;   // lower is evicted first
  int64_t ts_us = 0;
  std::string sensor; // reading: sensor name; alert: rule name
  std::string body;
};

// One committed event as read back.
struct StoredEvent {
  uint64_t seq = 0;
  int64_t ts_us = 0;
  int kind = 0;
  std::string sensor;
  std::string body;   // encoded sluice.fb.Event with its seq set
};

// Seq ranges a start could not vouch for (buffer/internal/seq_file.h): never reused,
// possibly handed out and lost.
struct GapSummary {
  uint64_t ranges = 0;
  uint64_t seqs = 0;            // seqs in all ranges
  uint64_t last_first = 0;      // the newest range
  uint64_t last_last = 0;
  std::string last_reason;
  int64_t last_at_us = 0;
};

// One such range (the gaps table): skipped, never reused, possibly handed
// out and lost.
struct SeqGap {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::string reason;
  int64_t at_us = 0;
};

struct UpstreamCursorStats {
  std::string name;
  uint64_t acked_seq = 0;          // every seq <= this was acknowledged
  uint64_t evicted_unsent = 0;     // evicted before this upstream got them
};

struct RingStats {
  uint64_t events = 0;             // rows in the ring
  uint64_t bytes = 0;              // accounted bytes (see README)
  uint64_t first_seq = 0;          // 0 when empty
  uint64_t last_seq = 0;           // last committed seq (0: none ever)
  int64_t first_ts_us = 0;
  int64_t last_ts_us = 0;
  uint64_t evicted_total = 0;
  uint64_t evicted_full = 0;       // evictions forced by a full disk
  uint64_t commits = 0;
  uint64_t commit_failures = 0;
  uint64_t full_events = 0;        // SQLITE_FULL / ENOSPC seen
  uint64_t dropped = 0;            // events producers gave up on after the queue
                                   // stayed full (CountDropped); never committed
  uint64_t corrupt_recoveries = 0; // databases quarantined (persisted)
  uint64_t file_bytes = 0;         // every ring file in data_dir (BufferFileBytes)
  uint64_t corrupt_rows = 0;       // rows readers skipped (body failed
                                   // VerifyEncodedEvent), this process
  uint64_t failed_events = 0;      // events lost because they could not be
                                   // committed before the ring stopped
  // Commits are failing (storage error, full disk with nothing left to
  // evict): what could not be committed is held and retried, producers
  // wait. Wall time of the first failure of this episode, 0 when
  // committing normally.
  int64_t commit_failing_since_us = 0;
  std::string last_commit_error;   // of the current or last failure episode
  uint64_t held_events = 0;        // waiting for a commit to succeed
  // durability normal: every seq <= synced_seq has been fsynced.
  uint64_t synced_seq = 0;
  int64_t last_sync_us = 0;        // wall time of the last fsync (0: none)
  uint64_t sync_failures = 0;
  uint64_t file_replacements = 0;  // buffer.db deleted or replaced while open
  GapSummary gaps;
  uint64_t committed_events = 0;   // events committed by this process
  uint64_t committed_bytes = 0;    // their accounted bytes
  int64_t last_commit_us = 0;      // wall time of the last commit (0: none yet)
  // How long ago (monotonic) the writer thread last went round its loop; it
  // does at least once a second while it runs, so a large value means a
  // commit is stuck (the watchdog's health check). -1 once stopped.
  int64_t writer_idle_us = 0;
  std::vector<UpstreamCursorStats> upstreams;
};

class RingReader {
 public:
  virtual ~RingReader() = default;
  // A read-only connection to data_dir/buffer.db without a running Ring
  // (the CLI's history commands). kNotFound if there is no buffer.db.
  static StatusOr<std::unique_ptr<RingReader>> Open(const std::string& data_dir);

  // Appends up to `max_events` committed events with seq > after_seq, in seq
  // order, to *out. Evicted seqs are simply absent. Not thread-safe; one
  // reader per thread.
  virtual Status ReadAfter(uint64_t after_seq, size_t max_events,
                           std::vector<StoredEvent>* out) = 0;
};

class Ring {
 public:
  virtual ~Ring() = default;

  // Opens (creating, migrating, or quarantining a corrupt file and starting
  // fresh) and starts the writer thread.
  static StatusOr<std::unique_ptr<Ring>> Open(const RingOptions& options,
                                              Clock& clock);

  // Queues one event for the next group commit. If the queue is full,
  // waits up to `timeout_us` (0: do not wait) for room: returns kUnavailable
  // if there is none or the ring is stopping. A refusal is not a loss by
  // itself (a stream producer waits and retries): producers that give up on
  // an event report it with CountDropped. Thread-safe.
  virtual Status Append(Record record, int64_t timeout_us) = 0;

  // Counts `n` events a producer gave up on (RingStats::dropped).
  // Thread-safe.
  virtual void CountDropped(uint64_t n) = 0;

  // Blocks until everything appended before the call has been through a
  // commit attempt; returns that attempt's status (an error while commits
  // fail: the events are held and retried). Thread-safe.
  virtual Status Flush() = 0;

  // The highest committed seq. Thread-safe.
  virtual uint64_t LastSeq() const = 0;

  // Blocks until LastSeq() > after_seq, the timeout passes or Stop() runs.
  // Returns LastSeq(). Thread-safe.
  virtual uint64_t WaitForCommit(uint64_t after_seq, int64_t timeout_us) = 0;

  // Records that upstream `index` (position in options.upstreams) has every
  // seq <= `seq` acknowledged. Only moves forward. Persisted by the writer
  // in its next commit. Thread-safe.
  virtual void Ack(size_t index, uint64_t seq) = 0;
  // The acknowledged seq of upstream `index` (as loaded at open, or since
  // advanced). Thread-safe.
  virtual uint64_t Cursor(size_t index) const = 0;

  // A new read connection for one uplink thread.
  virtual StatusOr<std::unique_ptr<RingReader>> NewReader() = 0;

  virtual RingStats Stats() const = 0;

  // Commits what is queued, persists cursors, stops the writer thread and
  // closes the database. Idempotent.
  virtual Status Stop() = 0;
};

}  // namespace sluice
