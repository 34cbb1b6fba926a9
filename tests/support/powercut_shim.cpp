// LD_PRELOAD shim for power-cut tests (test-only; never linked into product
// binaries). Active only when SLUICE_POWERCUT_DIR=<data dir> and
// SLUICE_POWERCUT_SHADOW=<shadow dir> are set at process start; it then
// removes both variables from the environment, so child processes run
// with the shim inactive.
//
// Model (leveldb's FaultInjectionTestEnv, SQLite's crash tests): every
// write reaches the real file, so the process sees normal semantics; for
// each file under the data dir the shim tracks which byte ranges are dirty
// and keeps, in the shadow dir, what a power cut would leave:
//   - file content and size become durable on fsync/fdatasync (and
//     msync(MS_SYNC) / sync_file_range(WAIT_AFTER) for their ranges,
//     without the size), syncfs/sync for everything;
//   - a directory's entries (creations, renames, unlinks) become durable on
//     fsync/fdatasync of the directory: its durable listing is replaced by
//     its current entries. A created file whose directory was never synced
//     does not exist after a cut, even if its data was synced.
//   - what exists under the data dir when the process starts is durable as
//     it is (the shadow is rebuilt from it).
// Shadow layout (read by powercut.cpp, RestoreDurable):
//   MANIFEST      "root ID", then per directory "dir ID" and one
//                 "CHILD_ID f|d NAME" line per durable entry (atomic rename)
//   files/ID      durable content and size of file ID (missing: empty)
//   files/ID.lw   the last write since ID's last sync: three uint64
//                 (write counter, offset, length) and the bytes (empty or
//                 missing: none) — for the torn-write variant.
// SLUICE_POWERCUT_KILL_AT_WRITE=N: the process SIGKILLs itself right after
// its Nth write to a tracked file (counted from start), before any later
// sync: a cut that lands between a write and its sync, as SQLite's crash
// tests place them.
// Thread-safe: one mutex around the model. Writes to untracked fds
// (sockets, other files) only cost a table lookup. A shim failure (shadow
// unwritable) aborts the process with a message on stderr.
#undef _FILE_OFFSET_BITS  // define open and open64 as the separate symbols

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

template <typename F>
F Next(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}
#define REAL(type, name) static const auto real_##name = Next<type>(#name)

using OpenFn = int (*)(const char*, int, ...);
using OpenAtFn = int (*)(int, const char*, int, ...);
using CloseFn = int (*)(int);
using WriteFn = ssize_t (*)(int, const void*, size_t);
using PwriteFn = ssize_t (*)(int, const void*, size_t, off64_t);
using WritevFn = ssize_t (*)(int, const struct iovec*, int);
using PwritevFn = ssize_t (*)(int, const struct iovec*, int, off64_t);
using Pwritev2Fn = ssize_t (*)(int, const struct iovec*, int, off64_t, int);
using FtruncFn = int (*)(int, off64_t);
using TruncFn = int (*)(const char*, off64_t);
using FallocFn = int (*)(int, int, off64_t, off64_t);
using PosixFallocFn = int (*)(int, off64_t, off64_t);
using FdFn = int (*)(int);
using SyncFn = void (*)();
using SfrFn = int (*)(int, off64_t, off64_t, unsigned int);
using MmapFn = void* (*)(void*, size_t, int, int, int, off64_t);
using MunmapFn = int (*)(void*, size_t);
using MsyncFn = int (*)(void*, size_t, int);
using RenameFn = int (*)(const char*, const char*);
using RenameAtFn = int (*)(int, const char*, int, const char*);
using RenameAt2Fn = int (*)(int, const char*, int, const char*, unsigned int);
using PathFn = int (*)(const char*);
using UnlinkAtFn = int (*)(int, const char*, int);
using Dup2Fn = int (*)(int, int);
using Dup3Fn = int (*)(int, int, int);
using FcntlFn = int (*)(int, int, ...);

// Our own I/O on the shadow and on real files goes straight to libc's next
// definitions, never through the hooks below.
int RawOpen(const char* path, int flags, mode_t mode = 0) {
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

constexpr int kFdTable = 65536;
constexpr uint64_t kNoShrink = UINT64_MAX;

struct Inode {
  bool is_dir = false;
  std::map<uint64_t, uint64_t> dirty;  // start -> end, disjoint, not adjacent
  uint64_t min_size = kNoShrink;       // smallest size since the last sync
  int lw_fd = -1;                      // files/ID.lw, opened on first write
};

struct Mapping {
  uintptr_t addr;
  size_t len;
  uint64_t id;
  uint64_t off;
};

struct State {
  std::mutex mu;
  std::string data_dir;  // canonical
  std::string shadow_dir;
  uint64_t root_id = 0;
  uint64_t next_id = 1;
  uint64_t write_counter = 0;
  uint64_t kill_at_write = 0;  // SLUICE_POWERCUT_KILL_AT_WRITE, 0: never
  std::map<std::pair<dev_t, ino_t>, uint64_t> by_ino;  // live files only
  std::map<uint64_t, Inode> inodes;
  std::map<uint64_t, std::map<std::string, uint64_t>> durable;  // dir -> name -> id
  std::map<int, uint64_t> fds;
  std::vector<Mapping> maps;
};

std::atomic<bool> g_active{false};
std::atomic<uint8_t> g_tracked[kFdTable];
std::atomic<int> g_high_fds{0};   // tracked fds >= kFdTable
std::atomic<int> g_mappings{0};
State* g_state = nullptr;

bool MaybeTracked(int fd) {
  if (!g_active.load(std::memory_order_relaxed) || fd < 0) return false;
  if (fd < kFdTable) return g_tracked[fd].load(std::memory_order_relaxed) != 0;
  return g_high_fds.load() > 0;
}

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
  if (s.write_counter == s.kill_at_write) kill(getpid(), SIGKILL);  // the cut, mid-update
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

// A path is unlinked or replaced: if it was the last link, forget its inode
// number (it may be reused) — the model keeps the file for durable listings.
struct Forget {
  bool armed = false;
  std::pair<dev_t, ino_t> key{};
  Forget(int dirfd, const char* path) {
    if (!g_active || !path) return;
    struct stat64 st;
    if (fstatat64(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) != 0) return;
    armed = S_ISDIR(st.st_mode) || st.st_nlink <= 1;
    key = {st.st_dev, st.st_ino};
  }
  void Done(int r, const Forget* source = nullptr) {
    if (r != 0 || !armed) return;
    if (source && source->key == key) return;  // rename onto itself
    std::lock_guard<std::mutex> lock(g_state->mu);
    g_state->by_ino.erase(key);
  }
};

void Init() {
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
  g_state = s;
  unsetenv("SLUICE_POWERCUT_KILL_AT_WRITE");
  unsetenv("SLUICE_POWERCUT_DIR");
  unsetenv("SLUICE_POWERCUT_SHADOW");
  pthread_atfork(nullptr, nullptr, [] { g_active = false; });
  g_active = true;
}

__attribute__((constructor)) void PowercutInit() { Init(); }

mode_t ModeArg(int flags, va_list ap) {
  return (flags & (O_CREAT | __O_TMPFILE)) ? static_cast<mode_t>(va_arg(ap, int)) : 0;
}

}  // namespace

extern "C" {

#define OPEN_HOOK(name)                                                       \
  int name(const char* path, int flags, ...) {                                \
    REAL(OpenFn, name);                                                       \
    va_list ap;                                                               \
    va_start(ap, flags);                                                      \
    mode_t mode = ModeArg(flags, ap);                                         \
    va_end(ap);                                                               \
    bool existed = ExistsAt(AT_FDCWD, path, flags);                           \
    return OnOpen(real_##name(path, flags, mode), flags, existed);            \
  }
OPEN_HOOK(open)
OPEN_HOOK(open64)

#define OPENAT_HOOK(name)                                                     \
  int name(int dirfd, const char* path, int flags, ...) {                     \
    REAL(OpenAtFn, name);                                                     \
    va_list ap;                                                               \
    va_start(ap, flags);                                                      \
    mode_t mode = ModeArg(flags, ap);                                         \
    va_end(ap);                                                               \
    bool existed = ExistsAt(dirfd, path, flags);                              \
    return OnOpen(real_##name(dirfd, path, flags, mode), flags, existed);     \
  }
OPENAT_HOOK(openat)
OPENAT_HOOK(openat64)

// _FORTIFY_SOURCE variants (no mode: O_CREAT is not allowed with them).
int __open_2(const char* path, int flags) { return open(path, flags); }
int __open64_2(const char* path, int flags) { return open64(path, flags); }
int __openat_2(int dirfd, const char* path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char* path, int flags) { return openat64(dirfd, path, flags); }
int creat(const char* path, mode_t mode) { return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode); }
int creat64(const char* path, mode_t mode) {
  return open64(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

int close(int fd) {
  REAL(CloseFn, close);
  if (MaybeTracked(fd)) {
    std::lock_guard<std::mutex> lock(g_state->mu);
    Untrack(*g_state, fd);
  }
  return real_close(fd);
}

static int OnDup(int oldfd, int newfd) {
  if (newfd < 0 || !g_active) return newfd;
  State& s = *g_state;
  std::lock_guard<std::mutex> lock(s.mu);
  Untrack(s, newfd);
  auto it = s.fds.find(oldfd);
  if (it != s.fds.end()) SetTracked(s, newfd, it->second);
  return newfd;
}
int dup(int fd) {
  REAL(FdFn, dup);
  return OnDup(fd, real_dup(fd));
}
int dup2(int fd, int fd2) {
  REAL(Dup2Fn, dup2);
  int r = real_dup2(fd, fd2);
  return fd == fd2 ? r : OnDup(fd, r);
}
int dup3(int fd, int fd2, int flags) {
  REAL(Dup3Fn, dup3);
  return OnDup(fd, real_dup3(fd, fd2, flags));
}

#define FCNTL_HOOK(name)                                                      \
  int name(int fd, int cmd, ...) {                                            \
    REAL(FcntlFn, name);                                                      \
    va_list ap;                                                               \
    va_start(ap, cmd);                                                        \
    void* arg = va_arg(ap, void*);                                            \
    va_end(ap);                                                               \
    int r = real_##name(fd, cmd, arg);                                        \
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) return OnDup(fd, r);        \
    return r;                                                                 \
  }
FCNTL_HOOK(fcntl)
FCNTL_HOOK(fcntl64)

ssize_t write(int fd, const void* buf, size_t n) {
  REAL(WriteFn, write);
  if (!MaybeTracked(fd)) return real_write(fd, buf, n);
  std::lock_guard<std::mutex> lock(g_state->mu);
  ssize_t r = real_write(fd, buf, n);
  if (r > 0) {
    off64_t end = lseek64(fd, 0, SEEK_CUR);
    struct iovec v = {const_cast<void*>(buf), n};
    if (end >= r) RecordWrite(*g_state, fd, static_cast<uint64_t>(end - r), &v, 1, static_cast<size_t>(r));
  }
  return r;
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  REAL(WritevFn, writev);
  if (!MaybeTracked(fd)) return real_writev(fd, iov, iovcnt);
  std::lock_guard<std::mutex> lock(g_state->mu);
  ssize_t r = real_writev(fd, iov, iovcnt);
  if (r > 0) {
    off64_t end = lseek64(fd, 0, SEEK_CUR);
    if (end >= r) RecordWrite(*g_state, fd, static_cast<uint64_t>(end - r), iov, iovcnt, static_cast<size_t>(r));
  }
  return r;
}

#define PWRITE_HOOK(name, off_type)                                           \
  ssize_t name(int fd, const void* buf, size_t n, off_type off) {             \
    REAL(PwriteFn, name);                                                     \
    ssize_t r = real_##name(fd, buf, n, off);                                 \
    struct iovec v = {const_cast<void*>(buf), n};                             \
    AfterPwrite(fd, r, off, &v, 1);                                           \
    return r;                                                                 \
  }
PWRITE_HOOK(pwrite, off_t)
PWRITE_HOOK(pwrite64, off64_t)

#define PWRITEV_HOOK(name, off_type)                                          \
  ssize_t name(int fd, const struct iovec* iov, int iovcnt, off_type off) {   \
    REAL(PwritevFn, name);                                                    \
    ssize_t r = real_##name(fd, iov, iovcnt, off);                            \
    AfterPwrite(fd, r, off, iov, iovcnt);                                     \
    return r;                                                                 \
  }
PWRITEV_HOOK(pwritev, off_t)
PWRITEV_HOOK(pwritev64, off64_t)

#define PWRITEV2_HOOK(name, off_type)                                         \
  ssize_t name(int fd, const struct iovec* iov, int iovcnt, off_type off, int flags) { \
    REAL(Pwritev2Fn, name);                                                   \
    if (off == -1 && MaybeTracked(fd)) { /* current position: like writev */ \
      std::lock_guard<std::mutex> lock(g_state->mu);                          \
      ssize_t r = real_##name(fd, iov, iovcnt, off, flags);                   \
      off64_t end = r > 0 ? lseek64(fd, 0, SEEK_CUR) : -1;                    \
      if (r > 0 && end >= r)                                                  \
        RecordWrite(*g_state, fd, static_cast<uint64_t>(end - r), iov, iovcnt, static_cast<size_t>(r)); \
      return r;                                                               \
    }                                                                         \
    ssize_t r = real_##name(fd, iov, iovcnt, off, flags);                     \
    AfterPwrite(fd, r, off, iov, iovcnt);                                     \
    return r;                                                                 \
  }
PWRITEV2_HOOK(pwritev2, off_t)
PWRITEV2_HOOK(pwritev64v2, off64_t)

int ftruncate(int fd, off_t len) {
  REAL(FtruncFn, ftruncate);
  return TruncateFd(fd, len, real_ftruncate);
}
int ftruncate64(int fd, off64_t len) {
  REAL(FtruncFn, ftruncate64);
  return TruncateFd(fd, len, real_ftruncate64);
}

#define TRUNCATE_HOOK(name, off_type)                                         \
  int name(const char* path, off_type len) {                                  \
    REAL(TruncFn, name);                                                      \
    if (!g_active) return real_##name(path, len);                             \
    int fd = open64(path, O_WRONLY | O_CLOEXEC);                              \
    if (fd < 0) return real_##name(path, len);                                \
    int r = ftruncate64(fd, len);                                             \
    int e = errno;                                                            \
    close(fd);                                                                \
    errno = e;                                                                \
    return r;                                                                 \
  }
TRUNCATE_HOOK(truncate, off_t)
TRUNCATE_HOOK(truncate64, off64_t)

int fallocate(int fd, int mode, off_t off, off_t len) { return FallocateFd(fd, mode, off, len, false); }
int fallocate64(int fd, int mode, off64_t off, off64_t len) {
  return FallocateFd(fd, mode, off, len, false);
}
int posix_fallocate(int fd, off_t off, off_t len) { return FallocateFd(fd, 0, off, len, true); }
int posix_fallocate64(int fd, off64_t off, off64_t len) { return FallocateFd(fd, 0, off, len, true); }

int fsync(int fd) {
  REAL(FdFn, fsync);
  int r = real_fsync(fd);
  if (r == 0) OnSync(fd);
  return r;
}
int fdatasync(int fd) {
  REAL(FdFn, fdatasync);
  int r = real_fdatasync(fd);
  if (r == 0) OnSync(fd);
  return r;
}
int syncfs(int fd) {
  REAL(FdFn, syncfs);
  int r = real_syncfs(fd);
  if (r == 0 && g_active) {
    std::lock_guard<std::mutex> lock(g_state->mu);
    SyncAll(*g_state);
  }
  return r;
}
void sync() {
  REAL(SyncFn, sync);
  real_sync();
  if (g_active) {
    std::lock_guard<std::mutex> lock(g_state->mu);
    SyncAll(*g_state);
  }
}

int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags) {
  REAL(SfrFn, sync_file_range);
  int r = real_sync_file_range(fd, off, n, flags);
  if (r == 0 && (flags & SYNC_FILE_RANGE_WAIT_AFTER) && (flags & SYNC_FILE_RANGE_WRITE) &&
      MaybeTracked(fd)) {
    State& s = *g_state;
    std::lock_guard<std::mutex> lock(s.mu);
    auto it = s.fds.find(fd);
    uint64_t lo = static_cast<uint64_t>(off);
    uint64_t hi = n == 0 ? UINT64_MAX : lo + static_cast<uint64_t>(n);
    if (it != s.fds.end()) DataSync(s, it->second, fd, lo, hi, false);
  }
  return r;
}

#define MMAP_HOOK(name, off_type)                                             \
  void* name(void* addr, size_t len, int prot, int flags, int fd, off_type off) { \
    REAL(MmapFn, name);                                                       \
    void* p = real_##name(addr, len, prot, flags, fd, off);                   \
    if (p != MAP_FAILED && (prot & PROT_WRITE) && (flags & MAP_SHARED) && MaybeTracked(fd)) { \
      std::lock_guard<std::mutex> lock(g_state->mu);                          \
      auto it = g_state->fds.find(fd);                                        \
      if (it != g_state->fds.end()) {                                         \
        g_state->maps.push_back({reinterpret_cast<uintptr_t>(p), len, it->second, \
                                 static_cast<uint64_t>(off)});                \
        ++g_mappings;                                                         \
      }                                                                       \
    }                                                                         \
    return p;                                                                 \
  }
MMAP_HOOK(mmap, off_t)
MMAP_HOOK(mmap64, off64_t)

int munmap(void* addr, size_t len) {
  REAL(MunmapFn, munmap);
  if (g_mappings.load() > 0 && g_active) {
    std::lock_guard<std::mutex> lock(g_state->mu);
    uintptr_t a = reinterpret_cast<uintptr_t>(addr);
    auto& maps = g_state->maps;
    for (size_t i = 0; i < maps.size();) {
      if (maps[i].addr < a + len && a < maps[i].addr + maps[i].len) {
        maps.erase(maps.begin() + static_cast<long>(i));
        --g_mappings;
      } else {
        ++i;
      }
    }
  }
  return real_munmap(addr, len);
}

int msync(void* addr, size_t len, int flags) {
  REAL(MsyncFn, msync);
  int r = real_msync(addr, len, flags);
  if (r != 0 || !(flags & MS_SYNC) || g_mappings.load() == 0 || !g_active) return r;
  State& s = *g_state;
  std::lock_guard<std::mutex> lock(s.mu);
  uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  for (const Mapping& m : s.maps) {
    uintptr_t lo = std::max(a, m.addr), hi = std::min(a + len, m.addr + m.len);
    if (lo >= hi) continue;
    for (const auto& f : s.fds) {
      if (f.second != m.id) continue;
      uint64_t flo = m.off + (lo - m.addr), fhi = m.off + (hi - m.addr);
      AddRange(s.inodes[m.id], flo, fhi);
      DataSync(s, m.id, f.first, flo, fhi, false);
      break;
    }
  }
  return r;
}

int rename(const char* from, const char* to) {
  REAL(RenameFn, rename);
  Forget src(AT_FDCWD, from), dst(AT_FDCWD, to);
  int r = real_rename(from, to);
  dst.Done(r, &src);
  return r;
}
int renameat(int fd1, const char* from, int fd2, const char* to) {
  REAL(RenameAtFn, renameat);
  Forget src(fd1, from), dst(fd2, to);
  int r = real_renameat(fd1, from, fd2, to);
  dst.Done(r, &src);
  return r;
}
int renameat2(int fd1, const char* from, int fd2, const char* to, unsigned int flags) {
  REAL(RenameAt2Fn, renameat2);
  Forget src(fd1, from), dst(fd2, to);
  int r = real_renameat2(fd1, from, fd2, to, flags);
  if (!(flags & RENAME_EXCHANGE)) dst.Done(r, &src);
  return r;
}
int unlink(const char* path) {
  REAL(PathFn, unlink);
  Forget f(AT_FDCWD, path);
  int r = real_unlink(path);
  f.Done(r);
  return r;
}
int unlinkat(int dirfd, const char* path, int flags) {
  REAL(UnlinkAtFn, unlinkat);
  Forget f(dirfd, path);
  int r = real_unlinkat(dirfd, path, flags);
  f.Done(r);
  return r;
}
int rmdir(const char* path) {
  REAL(PathFn, rmdir);
  Forget f(AT_FDCWD, path);
  int r = real_rmdir(path);
  f.Done(r);
  return r;
}
int remove(const char* path) {
  REAL(PathFn, remove);
  Forget f(AT_FDCWD, path);
  int r = real_remove(path);
  f.Done(r);
  return r;
}

}  // extern "C"
