// RingReader over its own read-only connection (WAL: reads run beside the
// writer and see only committed transactions). Not thread-safe: one
// reader per thread.
#pragma once

#include "buffer/internal/private.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "buffer/ring.h"
#include "buffer/internal/sqlite_util.h"

namespace sluice {

// Reads the current row of a (seq, ts_us, kind, sensor, body) query over
// events into *out. False when the body fails verification (VerifyEncodedEvent):
// then only out->seq is set.
bool EventFromRow(sqlite3_stmt* st, StoredEvent* out);

class ReaderImpl final : public RingReader {
 public:
  // `corrupt_rows` counts rows whose body fails verification; shared with
  // the Ring's Stats().
  // `generation` (may be null) is bumped by the writer when it moved to a
  // new buffer.db; the reader then reopens before its next read.
  ReaderImpl(std::shared_ptr<std::atomic<uint64_t>> corrupt_rows,
             std::shared_ptr<std::atomic<uint64_t>> generation = nullptr);
  ~ReaderImpl() override;

  // Opens the read connection. `allow_immutable` (the CLI's readers): fall
  // back to an immutable open when the data dir is not writable and there
  // is no WAL (OpenReadOnlyDb); the daemon's own readers never do.
  Status Init(const std::string& db_path, bool allow_immutable);
  Status ReadAfter(uint64_t after_seq, size_t max_events,
                   std::vector<StoredEvent>* out) override;

 private:
  Status Reopen();

  std::shared_ptr<std::atomic<uint64_t>> corrupt_rows_;
  std::shared_ptr<std::atomic<uint64_t>> generation_;
  uint64_t seen_generation_ = 0;
  std::string path_;
  bool allow_immutable_ = false;
  uint64_t logged_corrupt_ = 0;
  sql::Db db_;
  sql::Stmt read_;  // declared after db_: finalized before the close
};

}  // namespace sluice
