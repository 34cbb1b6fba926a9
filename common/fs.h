// The filesystem half of the OS seam: owned file descriptors and durable
// whole-file writes. Every fsync and close result is checked; errors name
// the operation and the path ("fsync /var/lib/sluice/buffer.seq.tmp: ...").
// Thread-safe (no shared state), except that concurrent writers of one
// path race on its ".tmp" name: give each path one writer.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "common/status.h"

namespace sluice {

// Owns one file descriptor and closes it on destruction (errors of that
// implicit close are ignored: call Close() where they matter).
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership: the caller closes the returned fd.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the owned fd (if any) and owns `fd` instead.
  void reset(int fd = -1);
  // Closes the owned fd and reports a failed close; nothing if none.
  [[nodiscard]] Status Close(const std::string& what);

 private:
  int fd_ = -1;
};

// Writes all of `data`, retrying short writes and EINTR. A full disk
// (ENOSPC) is kFull, other failures kIoError; `what` names the file.
[[nodiscard]] Status WriteAll(int fd, const void* data, size_t size, const std::string& what);

// Replaces `path` with `content` atomically and durably: writes
// "<path>.tmp" (created with `mode`, minus the umask), fsyncs it, renames it
// over `path` and fsyncs `dir` (the directory holding `path`). After an
// error `path` is unchanged (the tmp file is removed) — except when only the
// final directory fsync failed: then the new content is in place but may not
// survive a power cut.
[[nodiscard]] Status WriteFileAtomic(const std::string& dir, const std::string& path,
                                     const std::string& content, mode_t mode);

// fsyncs the directory `dir`, making creations, renames and unlinks in it
// durable.
[[nodiscard]] Status FsyncDir(const std::string& dir);

// fsyncs the file at `path`. With `missing_ok`, a missing file is no error
// (nothing of it is left to make durable).
[[nodiscard]] Status FsyncPath(const std::string& path, bool missing_ok = false);

// The directory part of `path` ("a/b" -> "a", "/b" -> "/", "b" -> ".").
std::string DirName(const std::string& path);

// Bytes this process caused to be written to storage so far (write_bytes
// of /proc/self/io: pages it dirtied on disk-backed file systems); -1 where
// the kernel does not account I/O.
int64_t ProcessStorageBytesWritten();

}  // namespace sluice
