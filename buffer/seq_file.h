// The seq reservation file `data_dir/buffer.seq`: one decimal number, the
// highest seq the writer may hand out without writing the file again.
//
// Before committing seq S the writer makes sure the file says >= S
// (reserving kBlock seqs ahead, so the file is written about once per
// million events). buffer.db's meta table holds the exact next seq, so a
// normal restart continues from there without a gap; when buffer.db is
// replaced (corrupt, deleted) the fresh database starts above the
// reservation, so no seq is ever handed out twice.
//
// Writes are atomic: tmp file, fsync, rename, fsync of the directory.
// Not thread-safe: used by the writer (and Ring::Open before it starts).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace sluice {

// Replaces `path` with `content` atomically and durably: tmp file, fsync,
// rename, fsync of `dir`.
Status WriteFileDurably(const std::string& dir, const std::string& path,
                        const std::string& content);
Status FsyncDir(const std::string& dir);

class SeqReservation {
 public:
  static constexpr uint64_t kBlock = 1000000;

  explicit SeqReservation(std::string data_dir);

  // Reads the file; a missing file reserves nothing (0). An unreadable or
  // malformed file is logged and treated as missing.
  Status Load();
  uint64_t reserved() const { return reserved_; }

  // Ensures reserved() >= seq, writing `seq + kBlock - 1` if it is not.
  Status Cover(uint64_t seq);

  const std::string& path() const { return path_; }

 private:
  Status Write(uint64_t value);

  std::string dir_;
  std::string path_;
  uint64_t reserved_ = 0;
};

// The run marker `data_dir/buffer.run`: the kernel's boot id, written
// (and fsynced) when the writer opens the database and removed after a
// clean close. Found at open with a different boot id, it means the last
// run ended with the machine going down (power loss, reset) rather than a
// stop or a process crash. With durability off/normal such an end may have
// lost the last commits, and seqs from them may already be upstream, so the
// writer then continues above the reservation instead of reusing them.
// Not thread-safe: the writer's open and close only.
class RunMarker {
 public:
  explicit RunMarker(std::string data_dir);

  // Reads the previous marker: *machine_went_down is true when one exists
  // with a boot id other than the current one.
  Status Check(bool* machine_went_down);
  // Writes the marker for this run.
  Status Create();
  // Removes it (a clean close); nothing if Create() never succeeded.
  Status Remove();

  // The kernel's boot id (/proc/sys/kernel/random/boot_id), or "" if
  // unavailable (then no reboot can be detected).
  static std::string BootId();

 private:
  std::string dir_;
  std::string path_;
  bool created_ = false;
};

}  // namespace sluice
