// The seq floor: what keeps a seq from ever being handed out twice, whatever
// file is lost.
//
// SeqReservation: `data_dir/buffer.seq` and its copy `data_dir/buffer.floor`,
// each one line "<seq> <checksum>": the highest seq the writer may hand out
// without writing them again. Before committing seq S the writer makes sure
// they say >= S (reserving kBlock seqs ahead, so they are written about once
// per million events). buffer.db's meta table holds the exact next seq, so a
// start with an intact database continues from there without a gap; when
// buffer.db cannot vouch for the seqs it handed out (replaced, quarantined,
// its WAL lost) the writer continues above the larger of the two copies, so
// that one damaged, lowered or deleted copy cannot lower the floor.
//
// RunMarker: `data_dir/buffer.run` while the writer runs: the kernel's boot
// id (fsynced at open) and two high-water marks rewritten in place around
// every commit (not fsynced; they only need to survive a process crash on
// the same boot): `reserved`, the highest seq a commit in progress may use,
// written before the commit, and `committed`, written after it. A start that
// finds the marker of this boot with `committed` above what buffer.db holds
// knows the WAL was lost or damaged.
//
// Writes of whole files are atomic: tmp file, fsync, rename, fsync of the
// directory. Not thread-safe: used by the writer (and Ring::Open before it
// starts).
#pragma once

#include "buffer/internal/private.h"

#include <cstdint>
#include <string>

#include "common/fs.h"  // WriteFileAtomic, FsyncDir (for the writer too)
#include "common/status.h"

namespace sluice {

class SeqReservation {
 public:
  static constexpr uint64_t kBlock = 1000000;

  explicit SeqReservation(std::string data_dir, uint64_t block = kBlock);

  // Reads both copies. Missing copies reserve nothing; an unreadable or
  // malformed copy is logged, ignored and reported by damaged().
  Status Load();
  // The larger of the valid copies (0: none).
  uint64_t reserved() const { return reserved_; }
  // A copy was malformed, or the copies disagreed, or one was missing
  // while the other existed: the floor rests on fewer than two copies.
  bool damaged() const { return !damage_.empty(); }
  const std::string& damage() const { return damage_; }

  // Ensures reserved() >= seq, writing `seq + block - 1` to both copies if
  // it is not.
  Status Cover(uint64_t seq);
  // Rewrites both copies with max(reserved(), at_least) (repairs a
  // damaged copy).
  Status Repair(uint64_t at_least);

  const std::string& path() const { return path_; }

  // "<value> <checksum>\n", as written; ParseLine accepts it and a bare
  // "<value>\n" (the format of earlier releases).
  static std::string FormatLine(uint64_t value);
  static bool ParseLine(const std::string& text, uint64_t* value);

 private:
  Status Write(uint64_t value);

  std::string dir_;
  std::string path_;
  std::string copy_path_;
  uint64_t block_;
  uint64_t reserved_ = 0;
  std::string damage_;
};

class RunMarker {
 public:
  explicit RunMarker(std::string data_dir);
  ~RunMarker();

  struct Previous {
    bool exists = false;
    bool same_boot = false;      // written on this boot: a process crash
    bool marks_valid = false;    // the two marks below could be read
    uint64_t reserved = 0;
    uint64_t committed = 0;
  };
  // Reads the marker a previous run left behind (none after a clean stop).
  Status Check(Previous* previous);
  // Writes (and fsyncs) the marker for this run with both marks at `seq`.
  Status Create(uint64_t seq);
  // Rewrite a mark in place (no fsync: they serve a start after a process
  // crash on the same boot). A failed reserved mark fails the commit; a
  // failed committed mark drops both (DropMarks).
  Status MarkReserved(uint64_t seq);
  Status MarkCommitted(uint64_t seq);
  // Cuts the marks off (the boot id stays): a start after a crash then
  // cannot trust them and falls back to the reservation.
  Status DropMarks();
  // Removes it (a clean close); nothing if Create() never succeeded.
  Status Remove();

  // The kernel's boot id (/proc/sys/kernel/random/boot_id), or "" if
  // unavailable (then no reboot can be detected).
  static std::string BootId();

 private:
  Status WriteMark(size_t index, uint64_t seq);

  std::string dir_;
  std::string path_;
  int fd_ = -1;
  size_t marks_offset_ = 0;
  bool created_ = false;
};

}  // namespace sluice
