#include "common/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace sluice {
namespace {

std::string Errno(const std::string& what, int err) { return what + ": " + std::strerror(err); }

}  // namespace

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Status UniqueFd::Close(const std::string& what) {
  if (fd_ < 0) return Status::Ok();
  int fd = release();
  if (::close(fd) != 0) return IoError(Errno("close " + what, errno));
  return Status::Ok();
}

Status WriteAll(int fd, const void* data, size_t size, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::write(fd, p + off, size - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      return Status(err == ENOSPC ? StatusCode::kFull : StatusCode::kIoError,
                    Errno("write " + what, err));
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& dir, const std::string& path,
                       const std::string& content, mode_t mode) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return IoError(Errno("open " + tmp, errno));
  Status s = WriteAll(fd.get(), content.data(), content.size(), tmp);
  if (s.ok() && ::fsync(fd.get()) != 0) s = IoError(Errno("fsync " + tmp, errno));
  Status closed = fd.Close(tmp);
  if (s.ok()) s = closed;
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = IoError(Errno("rename " + tmp + " to " + path, errno));
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return FsyncDir(dir);
}

Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return IoError(Errno("open " + dir, errno));
  Status s;
  if (::fsync(fd.get()) != 0) s = IoError(Errno("fsync " + dir, errno));
  Status closed = fd.Close(dir);
  return s.ok() ? closed : s;
}

Status FsyncPath(const std::string& path, bool missing_ok) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (missing_ok && errno == ENOENT) return Status::Ok();
    return IoError(Errno("open " + path, errno));
  }
  Status s;
  if (::fsync(fd.get()) != 0) s = IoError(Errno("fsync " + path, errno));
  Status closed = fd.Close(path);
  return s.ok() ? closed : s;
}

int64_t ProcessStorageBytesWritten() {
  UniqueFd fd(::open("/proc/self/io", O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return -1;
  char buf[512];
  const ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* at = std::strstr(buf, "\nwrite_bytes:");
  return at ? std::strtoll(at + 13, nullptr, 10) : -1;
}

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace sluice
