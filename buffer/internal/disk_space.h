// Headroom for a full disk. A database on a full disk cannot even delete:
// SQLite needs WAL space for the pages a DELETE touches, and a checkpoint
// needs room to grow buffer.db by what the WAL holds. So the writer
//  - keeps the WAL small on a small file system (wal_autocheckpoint from
//    the file system's size),
//  - watches free space after every commit and, before the disk fills,
//    holds the ring below what fits (evicting oldest first) so that
//    `headroom` bytes stay free for the WAL and checkpoints,
//  - keeps a reserve file beside buffer.db (`buffer.reserve`,
//    kReserveBytes, allocated with posix_fallocate while space is
//    plentiful) and gives it up when SQLITE_FULL comes anyway (another
//    program filled the disk), to checkpoint, evict and commit again.
// Not thread-safe: writer thread only.
#pragma once

#include "buffer/internal/private.h"

#include <cstdint>
#include <string>

namespace sluice {

class DiskSpace {
 public:
  static constexpr uint64_t kReserveBytes = 1u << 20;

  explicit DiskSpace(std::string data_dir);

  // Free bytes for unprivileged writers on data_dir's file system, or
  // UINT64_MAX if statvfs fails.
  uint64_t FreeBytes() const;
  // The file system's size, or UINT64_MAX if statvfs fails.
  uint64_t TotalBytes() const;

  // Blocks allocated to `path` (0 if it is missing).
  static uint64_t AllocatedBytes(const std::string& path);

  // Creates the reserve file if it is missing and the file system has at
  // least four times its size free. Returns true if the reserve exists.
  bool EnsureReserve();
  // Deletes the reserve file; true if there was one to give up.
  bool ReleaseReserve();
  bool has_reserve() const { return has_reserve_; }

 private:
  std::string dir_;
  std::string path_;
  bool has_reserve_ = false;
};

}  // namespace sluice
