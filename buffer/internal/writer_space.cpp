// Writer: sizing for the file system and the full-disk handling (see
// buffer/internal/disk_space.h for the strategy).
#include <algorithm>

#include "buffer/internal/store.h"
#include "buffer/internal/writer.h"
#include "common/log.h"

namespace sluice {
namespace {

// How often a missing reserve is re-checked, and how long a byte limit
// lowered for SQLITE_FULL stays down.
constexpr int64_t kSpaceCheckUs = 10000000;

}  // namespace

Status Writer::SizeForDisk() {
  // The WAL between checkpoints and the headroom scale with the file
  // system: a 4 GB SD card gets the defaults, a 2 MB tmpfs a tiny WAL.
  const uint64_t total = disk_.TotalBytes();
  int64_t page_size = 4096;
  SLUICE_RETURN_IF_ERROR(sql::QueryInt(db_.get(), "PRAGMA page_size", &page_size));
  page_size_ = static_cast<uint64_t>(page_size);
  uint64_t wal_pages = kWalAutocheckpointPages;
  if (total != UINT64_MAX) {
    wal_pages = std::clamp<uint64_t>(total / 16 / static_cast<uint64_t>(page_size), 16,
                                     kWalAutocheckpointPages);
  }
  const uint64_t wal_bytes = wal_pages * static_cast<uint64_t>(page_size);
  wal_bytes_ = wal_bytes;
  headroom_bytes_ = std::min<uint64_t>(3 * wal_bytes + (256u << 10),
                                       total == UINT64_MAX ? UINT64_MAX : total / 4);
  // About 256 bytes of pages per row (row, index entry, b-tree slack).
  max_txn_rows_ = std::max<size_t>(64, wal_bytes / 256);
  if (wal_pages != static_cast<uint64_t>(kWalAutocheckpointPages)) {
    SLUICE_RETURN_IF_ERROR(sql::Exec(
        db_.get(), ("PRAGMA wal_autocheckpoint=" + std::to_string(wal_pages) + ";").c_str()));
  }
  if (!disk_.EnsureReserve()) {
    LogWarn("buffer", "little free space beside buffer.db: no full-disk reserve for now");
  }
  return Status::Ok();
}

void Writer::MakeRoom() {
  disk_.ReleaseReserve();
  int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                                     nullptr);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    full_log_.Log(std::string("WAL checkpoint on a full disk: ") + sqlite3_errstr(rc));
  }
  // A full disk met in spite of the headroom (or the file's hard cap):
  // the byte limit stays lowered for a while.
  next_space_check_us_ = clock_.NowMonotonicUs() + kSpaceCheckUs;
  full_hold_until_us_ = next_space_check_us_;
}

void Writer::WatchSpace() {
  const uint64_t fs_free = disk_.FreeBytes();
  if (fs_free == UINT64_MAX) return;
  if (fs_free >= headroom_bytes_ && cap_bytes_ >= options_.max_bytes && disk_.has_reserve()) {
    return;  // the common case: nothing to hold, nothing to restore
  }
  // The room the writer can count on for the WAL and checkpoints: free
  // blocks, the free pages inside buffer.db (reused before the file grows)
  // and the WAL file's own blocks (reused after every checkpoint).
  uint64_t room = fs_free + std::min(DiskSpace::AllocatedBytes(DbPath(options_.data_dir) + "-wal"),
                                     wal_bytes_);
  int64_t freelist = 0;
  if (sql::QueryInt(db_.get(), "PRAGMA freelist_count", &freelist).ok() && freelist > 0) {
    room += static_cast<uint64_t>(freelist) * page_size_;
  }
  const int64_t now = clock_.NowMonotonicUs();
  if (room < headroom_bytes_) {
    // Hold the ring where it is, minus what is missing: the next commit
    // evicts the oldest to get there (freed pages are reused, so the file
    // stops growing).
    const uint64_t missing = headroom_bytes_ - room;
    const uint64_t target = state_.txn.bytes > missing ? state_.txn.bytes - missing : 0;
    if (target < cap_bytes_) {
      cap_bytes_ = std::max<uint64_t>(target, 1);
      if (!space_low_logged_) {
        LogWarn("buffer", "disk nearly full (" + std::to_string(fs_free >> 10) +
                              " KiB free): holding the buffer at " +
                              std::to_string(cap_bytes_ >> 10) + " KiB, evicting the oldest");
        space_low_logged_ = true;
      }
    }
    return;
  }
  if (cap_bytes_ < options_.max_bytes && now >= full_hold_until_us_) {
    // Room beyond the headroom (free pages the evictions left count): the
    // ring grows into half of it at once. So a ring held for a disk that
    // another program keeps full stays at what fits rather than shrinking
    // on, and it gets its byte limit back as soon as the space returns.
    const uint64_t grow_to = state_.txn.bytes + (room - headroom_bytes_) / 2;
    if (grow_to > cap_bytes_) {
      cap_bytes_ = std::min(options_.max_bytes, grow_to);
      if (cap_bytes_ == options_.max_bytes) {
        LogInfo("buffer", "disk has room again; the buffer's byte limit is back to max_bytes");
        space_low_logged_ = false;
      }
    }
  }
  if (disk_.has_reserve() || now < next_space_check_us_) return;
  next_space_check_us_ = now + kSpaceCheckUs;
  if (fs_free > 4 * DiskSpace::kReserveBytes + headroom_bytes_) disk_.EnsureReserve();
}

}  // namespace sluice
