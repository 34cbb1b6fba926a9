// RingReader over its own read-only connection (WAL: reads run beside the
// writer and see only committed transactions). Not thread-safe: one
// reader per thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "buffer/ring.h"
#include "buffer/sqlite_util.h"

namespace sluice {

class ReaderImpl final : public RingReader {
 public:
  // `corrupt_rows` counts rows whose body fails verification; shared with
  // the Ring's Stats().
  explicit ReaderImpl(std::shared_ptr<std::atomic<uint64_t>> corrupt_rows);
  ~ReaderImpl() override;

  // Opens the read connection. `allow_immutable` (the CLI's readers): fall
  // back to an immutable open when the data dir is not writable and there
  // is no WAL (OpenReadOnlyDb); the daemon's own readers never do.
  Status Init(const std::string& db_path, bool allow_immutable);
  Status ReadAfter(uint64_t after_seq, size_t max_events,
                   std::vector<StoredEvent>* out) override;

 private:
  std::shared_ptr<std::atomic<uint64_t>> corrupt_rows_;
  uint64_t logged_corrupt_ = 0;
  sql::Db db_;
  sql::Stmt read_;  // declared after db_: finalized before the close
};

}  // namespace sluice
