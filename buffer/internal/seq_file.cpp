#include "buffer/internal/seq_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "common/log.h"

namespace sluice {
namespace {

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

}  // namespace

SeqReservation::SeqReservation(std::string data_dir, uint64_t block)
    : dir_(std::move(data_dir)),
      path_(dir_ + "/buffer.seq"),
      copy_path_(dir_ + "/buffer.floor"),
      block_(block == 0 ? kBlock : block) {}

namespace {

// FNV-1a over the decimal text: tells a damaged line from a valid one.
uint32_t Checksum(const std::string& digits) {
  uint32_t h = 2166136261u;
  for (unsigned char c : digits) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

enum class CopyState { kMissing, kValid, kDamaged };

CopyState ReadCopy(const std::string& path, uint64_t* value, std::string* why) {
  *value = 0;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return CopyState::kMissing;
    *why = Errno("open " + path);
    return CopyState::kDamaged;
  }
  char buf[96];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  int read_errno = errno;
  ::close(fd);
  if (n < 0) {
    errno = read_errno;
    *why = Errno("read " + path);
    return CopyState::kDamaged;
  }
  if (!SeqReservation::ParseLine(std::string(buf, static_cast<size_t>(n)), value)) {
    *why = path + " is malformed";
    return CopyState::kDamaged;
  }
  return CopyState::kValid;
}

}  // namespace

std::string SeqReservation::FormatLine(uint64_t value) {
  std::string digits = std::to_string(value);
  char sum[16];
  std::snprintf(sum, sizeof sum, "%08x", Checksum(digits));
  return digits + " " + sum + "\n";
}

bool SeqReservation::ParseLine(const std::string& text, uint64_t* value) {
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0 || i > 20) return false;
  std::string digits = text.substr(0, i);
  errno = 0;
  unsigned long long v = std::strtoull(digits.c_str(), nullptr, 10);
  if (errno != 0) return false;
  std::string rest = text.substr(i);
  if (rest == "\n" || rest.empty()) {  // earlier releases: the bare number
    *value = v;
    return true;
  }
  char expect[16];
  std::snprintf(expect, sizeof expect, " %08x\n", Checksum(digits));
  if (rest != expect) return false;
  *value = v;
  return true;
}

Status SeqReservation::Load() {
  reserved_ = 0;
  damage_.clear();
  uint64_t a = 0, b = 0;
  std::string why_a, why_b;
  CopyState sa = ReadCopy(path_, &a, &why_a);
  CopyState sb = ReadCopy(copy_path_, &b, &why_b);
  reserved_ = std::max(sa == CopyState::kValid ? a : 0, sb == CopyState::kValid ? b : 0);
  if (sa == CopyState::kDamaged) damage_ = why_a;
  if (sb == CopyState::kDamaged) damage_ += (damage_.empty() ? "" : "; ") + why_b;
  if (damage_.empty() && sa == CopyState::kValid && sb == CopyState::kValid && a != b) {
    damage_ = "buffer.seq (" + std::to_string(a) + ") and buffer.floor (" + std::to_string(b) +
              ") disagree";
  }
  // Earlier releases wrote buffer.seq alone: a missing copy beside it is
  // an upgrade, not damage. A missing buffer.seq beside a copy is damage.
  if (damage_.empty() && sa == CopyState::kMissing && sb == CopyState::kValid) {
    damage_ = "buffer.seq is missing (buffer.floor holds " + std::to_string(b) + ")";
  }
  if (!damage_.empty()) LogError("buffer", "seq floor: " + damage_);
  return Status::Ok();
}

Status SeqReservation::Cover(uint64_t seq) {
  if (seq <= reserved_) return Status::Ok();
  return Write(seq + block_ - 1);
}

Status SeqReservation::Repair(uint64_t at_least) {
  const uint64_t value = std::max(reserved_, at_least);
  if (value == 0) return Status::Ok();
  SLUICE_RETURN_IF_ERROR(Write(value));
  damage_.clear();
  return Status::Ok();
}

Status SeqReservation::Write(uint64_t value) {
  const std::string line = FormatLine(value);
  // The copy first: while buffer.seq is being replaced, the copy already
  // holds the new floor.
  SLUICE_RETURN_IF_ERROR(WriteFileAtomic(dir_, copy_path_, line, 0644));
  SLUICE_RETURN_IF_ERROR(WriteFileAtomic(dir_, path_, line, 0644));
  reserved_ = value;
  return Status::Ok();
}

RunMarker::RunMarker(std::string data_dir)
    : dir_(std::move(data_dir)), path_(dir_ + "/buffer.run") {}

RunMarker::~RunMarker() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

// Each mark: "r " or "c " then 20 digits and a newline.
constexpr size_t kMarkBytes = 23;

std::string MarkLine(char tag, uint64_t seq) {
  char buf[kMarkBytes + 1];
  std::snprintf(buf, sizeof buf, "%c %020llu\n", tag, static_cast<unsigned long long>(seq));
  return std::string(buf, kMarkBytes);
}

}  // namespace

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

Status RunMarker::Check(Previous* previous) {
  *previous = Previous();
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return IoError(Errno("open " + path_));
  }
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n < 0) return IoError(Errno("read " + path_));
  previous->exists = true;
  std::string text(buf, static_cast<size_t>(n));
  size_t nl = text.find('\n');
  std::string boot = text.substr(0, nl);
  std::string current = BootId();
  // An unreadable marker counts as a reboot only if we know the current
  // boot id differs.
  previous->same_boot = current.empty() || boot == current;
  if (nl != std::string::npos && text.size() >= nl + 1 + 2 * kMarkBytes) {
    std::string r = text.substr(nl + 1, kMarkBytes);
    std::string c = text.substr(nl + 1 + kMarkBytes, kMarkBytes);
    if (r.compare(0, 2, "r ") == 0 && c.compare(0, 2, "c ") == 0 && r.back() == '\n' &&
        c.back() == '\n') {
      char* end = nullptr;
      uint64_t rv = std::strtoull(r.c_str() + 2, &end, 10);
      bool ok = end == r.c_str() + kMarkBytes - 1;
      uint64_t cv = std::strtoull(c.c_str() + 2, &end, 10);
      ok = ok && end == c.c_str() + kMarkBytes - 1;
      if (ok) {
        previous->marks_valid = true;
        previous->reserved = rv;
        previous->committed = cv;
      }
    }
  }
  return Status::Ok();
}

Status RunMarker::Create(uint64_t seq) {
  const std::string boot = BootId();
  SLUICE_RETURN_IF_ERROR(
      WriteFileAtomic(dir_, path_, boot + "\n" + MarkLine('r', seq) + MarkLine('c', seq), 0644));
  if (fd_ >= 0) ::close(fd_);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd_ < 0) return IoError(Errno("open " + path_));
  marks_offset_ = boot.size() + 1;
  created_ = true;
  return Status::Ok();
}

Status RunMarker::WriteMark(size_t index, uint64_t seq) {
  if (fd_ < 0) return Status::Ok();
  const std::string line = MarkLine(index == 0 ? 'r' : 'c', seq);
  const off_t at = static_cast<off_t>(marks_offset_ + index * kMarkBytes);
  ssize_t n;
  do {
    n = ::pwrite(fd_, line.data(), line.size(), at);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(line.size())) return IoError(Errno("write " + path_));
  return Status::Ok();
}

Status RunMarker::DropMarks() {
  if (fd_ < 0) return Status::Ok();
  if (::ftruncate(fd_, static_cast<off_t>(marks_offset_)) != 0) {
    return IoError(Errno("truncate " + path_));
  }
  return Status::Ok();
}

Status RunMarker::MarkReserved(uint64_t seq) { return WriteMark(0, seq); }
Status RunMarker::MarkCommitted(uint64_t seq) { return WriteMark(1, seq); }

Status RunMarker::Remove() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!created_) return Status::Ok();  // a failed open: nothing of ours to remove
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return IoError(Errno("unlink " + path_));
  return Status::Ok();
}

}  // namespace sluice
