// The model of the power-cut shim: see powercut_shim.h.
#include "tests/support/powercut_shim.h"

namespace powercut {

// Our own I/O on the shadow and on real files goes straight to libc's next
// definitions, never through the hooks below.
int RawOpen(const char* path, int flags, mode_t mode) {
  REAL(OpenFn, open64);
  return real_open64(path, flags, mode);
}
int RawClose(int fd) {
  REAL(CloseFn, close);
  return real_close(fd);
}
ssize_t RawPwrite(int fd, const void* buf, size_t n, off64_t off) {
  REAL(PwriteFn, pwrite64);
  return real_pwrite64(fd, buf, n, off);
}
int RawFtruncate(int fd, off64_t len) {
  REAL(FtruncFn, ftruncate64);
  return real_ftruncate64(fd, len);
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "powercut shim: %s: %s\n", what.c_str(), std::strerror(errno));
  std::abort();
}

std::atomic<bool> g_active{false};
std::atomic<uint8_t> g_tracked[kFdTable];
std::atomic<int> g_high_fds{0};   // tracked fds >= kFdTable
std::atomic<int> g_mappings{0};
State* g_state = nullptr;

void SetTracked(State& s, int fd, uint64_t id) {
  if (fd < kFdTable) g_tracked[fd] = 1;
  else if (s.fds.count(fd) == 0) ++g_high_fds;
  s.fds[fd] = id;
}

void Untrack(State& s, int fd) {
  auto it = s.fds.find(fd);
  if (it == s.fds.end()) return;
  s.fds.erase(it);
  if (fd < kFdTable) g_tracked[fd] = 0;
  else --g_high_fds;
}

std::string FdPath(int fd) {
  char link[64], buf[PATH_MAX];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

bool Under(const State& s, const std::string& path) {
  return path == s.data_dir ||
         (path.size() > s.data_dir.size() && path.compare(0, s.data_dir.size(), s.data_dir) == 0 &&
          path[s.data_dir.size()] == '/');
}

std::string ShadowFile(const State& s, uint64_t id, const char* suffix = "") {
  return s.shadow_dir + "/files/" + std::to_string(id) + suffix;
}

void AddRange(Inode& in, uint64_t lo, uint64_t hi) {
  if (hi <= lo) return;
  auto it = in.dirty.upper_bound(lo);
  if (it != in.dirty.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= lo) {
      lo = prev->first;
      hi = std::max(hi, prev->second);
      it = in.dirty.erase(prev);
    }
  }
  while (it != in.dirty.end() && it->first <= hi) {
    hi = std::max(hi, it->second);
    it = in.dirty.erase(it);
  }
  in.dirty[lo] = hi;
}

uint64_t NewInode(State& s, bool is_dir, const struct stat64* st) {
  uint64_t id = s.next_id++;
  s.inodes[id].is_dir = is_dir;
  if (is_dir) s.durable[id];  // a new directory's entries are not durable yet
  if (st) s.by_ino[{st->st_dev, st->st_ino}] = id;
  return id;
}

uint64_t IdOf(State& s, const struct stat64& st, bool* created = nullptr) {
  auto it = s.by_ino.find({st.st_dev, st.st_ino});
  if (created) *created = it == s.by_ino.end();
  if (it != s.by_ino.end()) return it->second;
  return NewInode(s, S_ISDIR(st.st_mode), &st);
}

void CopyRange(int from, int to, uint64_t lo, uint64_t hi, const std::string& what) {
  static thread_local std::vector<char> buf(1 << 16);
  while (lo < hi) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(hi - lo, buf.size()));
    ssize_t r = pread64(from, buf.data(), n, static_cast<off64_t>(lo));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) Die("read " + what);
    if (r == 0) return;  // the real file is shorter: nothing more to copy
    if (RawPwrite(to, buf.data(), static_cast<size_t>(r), static_cast<off64_t>(lo)) != r) {
      Die("write shadow of " + what);
    }
    lo += static_cast<uint64_t>(r);
  }
}

// Makes the dirty ranges of `id` within [lo, hi) durable, reading the real
// file through `fd`; with `with_size` also its size (fsync semantics).
void DataSync(State& s, uint64_t id, int fd, uint64_t lo, uint64_t hi, bool with_size) {
  Inode& in = s.inodes[id];
  if (in.is_dir) return;
  for (const Mapping& m : s.maps) {
    if (m.id == id) AddRange(in, m.off, m.off + m.len);
  }
  const std::string shadow = ShadowFile(s, id);
  int sfd = RawOpen(shadow.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (sfd < 0) Die("open " + shadow);
  struct stat64 real_st, shadow_st;
  if (fstat64(fd, &real_st) != 0 || fstat64(sfd, &shadow_st) != 0) Die("fstat " + shadow);
  uint64_t size = static_cast<uint64_t>(real_st.st_size);
  uint64_t durable_size = static_cast<uint64_t>(shadow_st.st_size);
  if (with_size) {
    // Bytes cut off since the last sync are gone even if regrown.
    if (in.min_size < durable_size && RawFtruncate(sfd, static_cast<off64_t>(in.min_size)) != 0) {
      Die("truncate " + shadow);
    }
    if (RawFtruncate(sfd, static_cast<off64_t>(size)) != 0) Die("truncate " + shadow);
    durable_size = size;
    in.min_size = kNoShrink;
  }
  // Read through a descriptor that can read (the process's may be O_WRONLY).
  int rfd = fd;
  int acc = fcntl(fd, F_GETFL);
  if (acc >= 0 && (acc & O_ACCMODE) == O_WRONLY) {
    rfd = RawOpen(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC);
    if (rfd < 0) Die("reopen for reading " + shadow);
  }
  if (with_size) {  // nothing past the end of file stays dirty
    for (auto it = in.dirty.begin(); it != in.dirty.end();) {
      if (it->first >= size) {
        it = in.dirty.erase(it);
      } else {
        it->second = std::min(it->second, size);
        ++it;
      }
    }
  }
  hi = std::min(hi, durable_size);
  std::map<uint64_t, uint64_t> left;  // dirty parts outside [lo, hi)
  for (const auto& r : in.dirty) {
    uint64_t a = std::max(r.first, lo), b = std::min(r.second, hi);
    if (a >= b) {
      left.insert(r);
      continue;
    }
    CopyRange(rfd, sfd, a, b, shadow);
    if (r.first < a) left[r.first] = a;
    if (b < r.second) left[b] = r.second;
  }
  in.dirty.swap(left);
  if (rfd != fd) RawClose(rfd);
  if (RawClose(sfd) != 0) Die("close " + shadow);
  if (in.dirty.empty() && in.lw_fd >= 0 && RawFtruncate(in.lw_fd, 0) != 0) Die("truncate .lw");
}

void WriteManifest(State& s) {
  std::string out = "root " + std::to_string(s.root_id) + "\n";
  for (const auto& d : s.durable) {
    out += "dir " + std::to_string(d.first) + "\n";
    for (const auto& e : d.second) {
      out += std::to_string(e.second) + (s.inodes[e.second].is_dir ? " d " : " f ") + e.first + "\n";
    }
  }
  const std::string tmp = s.shadow_dir + "/MANIFEST.tmp";
  int fd = RawOpen(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || RawPwrite(fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size()) ||
      RawClose(fd) != 0) {
    Die("write " + tmp);
  }
  REAL(RenameFn, rename);
  if (real_rename(tmp.c_str(), (s.shadow_dir + "/MANIFEST").c_str()) != 0) Die("rename " + tmp);
}

// The durable listing of directory `id` (at `path`) becomes its current
// entries. Entries the shim never saw written get an empty durable file.
void DirSync(State& s, uint64_t id, const std::string& path, bool write_manifest = true) {
  DIR* d = opendir(path.c_str());
  if (!d) return;  // gone: nothing left to make durable
  std::map<std::string, uint64_t> entries;
  while (struct dirent64* e = readdir64(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat64 st;
    if (fstatat64(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) continue;
    entries[name] = IdOf(s, st);
  }
  closedir(d);
  s.durable[id] = std::move(entries);
  if (write_manifest) WriteManifest(s);
}

// Start state: everything under the data dir is durable as it is.
void Snapshot(State& s, uint64_t id, const std::string& path) {
  DirSync(s, id, path, false);
  for (const auto& e : s.durable[id]) {
    const std::string child = path + "/" + e.first;
    if (s.inodes[e.second].is_dir) {
      Snapshot(s, e.second, child);
      continue;
    }
    int fd = RawOpen(child.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) Die("open " + child);
    AddRange(s.inodes[e.second], 0, UINT64_MAX / 2);
    DataSync(s, e.second, fd, 0, UINT64_MAX, true);
    RawClose(fd);
  }
}

// Every live directory and file under `path` becomes durable (syncfs).
void SyncTree(State& s, const std::string& path) {
  struct stat64 st;
  if (lstat64(path.c_str(), &st) != 0) return;
  uint64_t id = IdOf(s, st);
  DirSync(s, id, path, false);
  for (const auto& e : s.durable[id]) {
    const std::string child = path + "/" + e.first;
    if (s.inodes[e.second].is_dir) {
      SyncTree(s, child);
      continue;
    }
    int fd = RawOpen(child.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    DataSync(s, e.second, fd, 0, UINT64_MAX, true);
    RawClose(fd);
  }
}

void SyncAll(State& s) {
  for (const auto& f : s.fds) DataSync(s, f.second, f.first, 0, UINT64_MAX, true);
  SyncTree(s, s.data_dir);
  WriteManifest(s);
}

// fsync/fdatasync of `fd` succeeded.
void OnSync(int fd) {
  if (!g_active || fd < 0) return;
  State& s = *g_state;
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.fds.find(fd);
  struct stat64 st;
  if (it == s.fds.end()) {
    // Not opened through the shim (e.g. fopen): adopt it, all of it dirty.
    if (fstat64(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) return;
    std::string path = FdPath(fd);
    if (!Under(s, path)) return;
    uint64_t id = IdOf(s, st);
    if (S_ISDIR(st.st_mode)) {
      DirSync(s, id, "/proc/self/fd/" + std::to_string(fd));
    } else {
      AddRange(s.inodes[id], 0, UINT64_MAX / 2);
      s.inodes[id].min_size = 0;
      DataSync(s, id, fd, 0, UINT64_MAX, true);
    }
    return;
  }
  if (s.inodes[it->second].is_dir) {
    DirSync(s, it->second, "/proc/self/fd/" + std::to_string(fd));
  } else {
    DataSync(s, it->second, fd, 0, UINT64_MAX, true);
  }
}

// A new fd from open*: track it if it is a file or directory under the data
// dir. `existed` is false when an O_CREAT open found no file before.
int OnOpen(int fd, int flags, bool existed) {
  if (fd < 0 || !g_active || (flags & O_PATH)) return fd;
  struct stat64 st;
  if (fstat64(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) return fd;
  std::string path = FdPath(fd);
  State& s = *g_state;
  if (!Under(s, path)) return fd;
  std::lock_guard<std::mutex> lock(s.mu);
  uint64_t id;
  if (!existed) {
    id = NewInode(s, S_ISDIR(st.st_mode), &st);
  } else {
    bool created = false;
    id = IdOf(s, st, &created);
    if (!created && (flags & O_TRUNC) && S_ISREG(st.st_mode)) s.inodes[id].min_size = 0;
  }
  if (!s.kill_file.empty()) {
    const size_t slash = path.rfind('/');
    if (path.compare(slash + 1, std::string::npos, s.kill_file) == 0) s.inodes[id].kill_file = true;
  }
  SetTracked(s, fd, id);
  return fd;
}

bool ExistsAt(int dirfd, const char* path, int flags) {
  if (!g_active || !(flags & O_CREAT) || !path) return true;
  struct stat64 st;
  return fstatat64(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

// A write of n bytes at off to tracked fd succeeded: mark it dirty and keep
// it as the file's last write. Caller holds the mutex.
void RecordWrite(State& s, int fd, uint64_t off, const struct iovec* iov, int iovcnt, size_t n) {
  auto it = s.fds.find(fd);
  if (it == s.fds.end() || n == 0) return;
  Inode& in = s.inodes[it->second];
  AddRange(in, off, off + n);
  if (in.lw_fd < 0) {
    const std::string lw = ShadowFile(s, it->second, ".lw");
    in.lw_fd = RawOpen(lw.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (in.lw_fd < 0) Die("open " + lw);
  }
  uint64_t header[3] = {++s.write_counter, off, n};
  std::vector<struct iovec> v;
  v.push_back({header, sizeof header});
  size_t left = n;
  for (int i = 0; i < iovcnt && left > 0; ++i) {
    size_t take = std::min(left, iov[i].iov_len);
    v.push_back({iov[i].iov_base, take});
    left -= take;
  }
  REAL(PwritevFn, pwritev64);
  if (real_pwritev64(in.lw_fd, v.data(), static_cast<int>(v.size()), 0) < 0) Die("write .lw");
  if (s.kill_at_write == 0) return;
  if (s.kill_file.empty() ? s.write_counter == s.kill_at_write
                          : in.kill_file && ++s.kill_file_writes == s.kill_at_write) {
    kill(getpid(), SIGKILL);  // the cut, mid-update
  }
}

void AfterPwrite(int fd, ssize_t r, off64_t off, const struct iovec* iov, int iovcnt) {
  if (r <= 0 || !MaybeTracked(fd)) return;
  std::lock_guard<std::mutex> lock(g_state->mu);
  RecordWrite(*g_state, fd, static_cast<uint64_t>(off), iov, iovcnt, static_cast<size_t>(r));
}

// A size change of `id` from old_size to new_size (ftruncate, fallocate).
void OnResize(State& s, uint64_t id, uint64_t old_size, uint64_t new_size) {
  Inode& in = s.inodes[id];
  if (new_size < old_size) in.min_size = std::min(in.min_size, new_size);
  if (new_size > old_size) AddRange(in, old_size, new_size);
  if (new_size < old_size) {
    for (auto it = in.dirty.begin(); it != in.dirty.end();) {
      if (it->first >= new_size) {
        it = in.dirty.erase(it);
      } else {
        it->second = std::min(it->second, new_size);
        ++it;
      }
    }
  }
}

int TruncateFd(int fd, off64_t len, FtruncFn real) {
  if (!MaybeTracked(fd)) return real(fd, len);
  State& s = *g_state;
  std::lock_guard<std::mutex> lock(s.mu);
  struct stat64 st;
  bool known = fstat64(fd, &st) == 0;
  int r = real(fd, len);
  auto it = s.fds.find(fd);
  if (r == 0 && known && it != s.fds.end()) {
    OnResize(s, it->second, static_cast<uint64_t>(st.st_size), static_cast<uint64_t>(len));
  }
  return r;
}

int FallocateFd(int fd, int mode, off64_t off, off64_t len, bool posix) {
  REAL(FallocFn, fallocate64);
  REAL(PosixFallocFn, posix_fallocate64);
  auto call = [&] { return posix ? real_posix_fallocate64(fd, off, len) : real_fallocate64(fd, mode, off, len); };
  if (!MaybeTracked(fd)) return call();
  State& s = *g_state;
  std::lock_guard<std::mutex> lock(s.mu);
  struct stat64 before, after;
  bool known = fstat64(fd, &before) == 0;
  int r = call();
  auto it = s.fds.find(fd);
  if (r == 0 && known && it != s.fds.end() && fstat64(fd, &after) == 0) {
    uint64_t old_size = static_cast<uint64_t>(before.st_size);
    uint64_t new_size = static_cast<uint64_t>(after.st_size);
    OnResize(s, it->second, old_size, new_size);
    if (mode & ~FALLOC_FL_KEEP_SIZE) {  // punch, zero, collapse, insert: content moved
      Inode& in = s.inodes[it->second];
      uint64_t from = static_cast<uint64_t>(off);
      in.min_size = std::min(in.min_size, from);
      AddRange(in, from, std::max(old_size, new_size));
    }
  }
  return r;
}

namespace {

__attribute__((constructor)) void Init() {
  const char* dir = getenv("SLUICE_POWERCUT_DIR");
  const char* shadow = getenv("SLUICE_POWERCUT_SHADOW");
  if (!dir || !shadow || !*dir || !*shadow) return;
  auto* s = new State;
  char buf[PATH_MAX];
  mkdir(dir, 0700);
  if (!realpath(dir, buf)) Die(std::string("realpath ") + dir);
  s->data_dir = buf;
  s->shadow_dir = shadow;
  mkdir(shadow, 0700);
  // A fresh shadow: remove what an earlier run left.
  const std::string files = s->shadow_dir + "/files";
  if (DIR* d = opendir(files.c_str())) {
    while (struct dirent64* e = readdir64(d)) {
      if (e->d_name[0] != '.') unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
  }
  mkdir(files.c_str(), 0700);
  struct stat64 st;
  if (lstat64(s->data_dir.c_str(), &st) != 0) Die("stat " + s->data_dir);
  s->root_id = NewInode(*s, true, &st);
  Snapshot(*s, s->root_id, s->data_dir);
  WriteManifest(*s);
  if (const char* k = getenv("SLUICE_POWERCUT_KILL_AT_WRITE")) s->kill_at_write = strtoull(k, nullptr, 10);
  if (const char* f = getenv("SLUICE_POWERCUT_KILL_FILE")) s->kill_file = f;
  g_state = s;
  unsetenv("SLUICE_POWERCUT_KILL_AT_WRITE");
  unsetenv("SLUICE_POWERCUT_KILL_FILE");
  unsetenv("SLUICE_POWERCUT_DIR");
  unsetenv("SLUICE_POWERCUT_SHADOW");
  pthread_atfork(nullptr, nullptr, [] { g_active = false; });
  g_active = true;
}


}  // namespace

}  // namespace powercut
