#include "buffer/seq_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "common/log.h"

namespace sluice {
namespace {

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

Status WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status(errno == ENOSPC ? StatusCode::kFull : StatusCode::kIoError,
                              Errno("write"));
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

SeqReservation::SeqReservation(std::string data_dir)
    : dir_(std::move(data_dir)), path_(dir_ + "/buffer.seq") {}

Status SeqReservation::Load() {
  reserved_ = 0;
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return IoError(Errno("open " + path_));
  }
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  int read_errno = errno;
  if (::close(fd) != 0) return IoError(Errno("close " + path_));
  if (n < 0) {
    errno = read_errno;
    return IoError(Errno("read " + path_));
  }
  buf[n] = '\0';
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(buf, &end, 10);
  if (errno != 0 || end == buf || (*end != '\n' && *end != '\0')) {
    LogError("buffer", "malformed " + path_ + ", ignoring it");
    return Status::Ok();
  }
  reserved_ = v;
  return Status::Ok();
}

Status SeqReservation::Cover(uint64_t seq) {
  if (seq <= reserved_) return Status::Ok();
  return Write(seq + kBlock - 1);
}

Status SeqReservation::Write(uint64_t value) {
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(Errno("open " + tmp));
  Status s = WriteAll(fd, std::to_string(value) + "\n");
  if (s.ok() && ::fsync(fd) != 0) s = IoError(Errno("fsync " + tmp));
  if (::close(fd) != 0 && s.ok()) s = IoError(Errno("close " + tmp));
  if (s.ok() && ::rename(tmp.c_str(), path_.c_str()) != 0) {
    s = IoError(Errno("rename " + tmp));
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return IoError(Errno("open " + dir_));
  if (::fsync(dfd) != 0) s = IoError(Errno("fsync " + dir_));
  if (::close(dfd) != 0 && s.ok()) s = IoError(Errno("close " + dir_));
  if (s.ok()) reserved_ = value;
  return s;
}

}  // namespace sluice
