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
  SLUICE_RETURN_IF_ERROR(WriteFileDurably(dir_, path_, std::to_string(value) + "\n"));
  reserved_ = value;
  return Status::Ok();
}

Status WriteFileDurably(const std::string& dir, const std::string& path,
                        const std::string& content) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError(Errno("open " + tmp));
  Status s = WriteAll(fd, content);
  if (s.ok() && ::fsync(fd) != 0) s = IoError(Errno("fsync " + tmp));
  if (::close(fd) != 0 && s.ok()) s = IoError(Errno("close " + tmp));
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = IoError(Errno("rename " + tmp));
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return FsyncDir(dir);
}

Status FsyncDir(const std::string& dir) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return IoError(Errno("open " + dir));
  Status s;
  if (::fsync(dfd) != 0) s = IoError(Errno("fsync " + dir));
  if (::close(dfd) != 0 && s.ok()) s = IoError(Errno("close " + dir));
  return s;
}

RunMarker::RunMarker(std::string data_dir)
    : dir_(std::move(data_dir)), path_(dir_ + "/buffer.run") {}

std::string RunMarker::BootId() {
  int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[64];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return "";
  std::string id(buf, static_cast<size_t>(n));
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

Status RunMarker::Check(bool* machine_went_down) {
  *machine_went_down = false;
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return IoError(Errno("open " + path_));
  }
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n < 0) return IoError(Errno("read " + path_));
  std::string previous(buf, static_cast<size_t>(n));
  while (!previous.empty() && previous.back() == '\n') previous.pop_back();
  std::string current = BootId();
  // An empty or unreadable marker after a crash mid-write counts as a
  // reboot only if we know the current boot id differs.
  *machine_went_down = !current.empty() && previous != current;
  return Status::Ok();
}

Status RunMarker::Create() {
  Status s = WriteFileDurably(dir_, path_, BootId() + "\n");
  created_ = s.ok();
  return s;
}

Status RunMarker::Remove() {
  if (!created_) return Status::Ok();  // a failed open: nothing of ours to remove
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return IoError(Errno("unlink " + path_));
  return Status::Ok();
}

}  // namespace sluice
