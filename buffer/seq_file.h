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

}  // namespace sluice
