#include "buffer/internal/disk_space.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdint>

#include "common/log.h"

namespace sluice {

DiskSpace::DiskSpace(std::string data_dir)
    : dir_(std::move(data_dir)), path_(dir_ + "/buffer.reserve") {
  struct stat st;
  has_reserve_ = ::stat(path_.c_str(), &st) == 0 &&
                 static_cast<uint64_t>(st.st_size) >= kReserveBytes;
}

uint64_t DiskSpace::FreeBytes() const {
  struct statvfs vfs;
  if (::statvfs(dir_.c_str(), &vfs) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

uint64_t DiskSpace::TotalBytes() const {
  struct statvfs vfs;
  if (::statvfs(dir_.c_str(), &vfs) != 0) return UINT64_MAX;
  return static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
}

uint64_t DiskSpace::AllocatedBytes(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

bool DiskSpace::EnsureReserve() {
  if (has_reserve_) return true;
  if (FreeBytes() < 4 * kReserveBytes) return false;
  int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  // Real blocks, not a sparse file: the point is to hold space.
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(kReserveBytes));
  bool ok = rc == 0 && ::fsync(fd) == 0;
  if (::close(fd) != 0) ok = false;
  if (!ok) {
    ::unlink(path_.c_str());
    return false;
  }
  has_reserve_ = true;
  return true;
}

bool DiskSpace::ReleaseReserve() {
  if (!has_reserve_) return false;
  has_reserve_ = false;
  if (::unlink(path_.c_str()) != 0) return false;
  LogWarn("buffer", "disk full: released the " + std::to_string(kReserveBytes >> 10) +
                        " KiB reserve beside buffer.db to make room");
  return true;
}

}  // namespace sluice
