// The power-cut shim's model (powercut_shim_model.cpp) and its hooks
// (powercut_shim.cpp): an LD_PRELOAD shim for power-cut tests (test-only;
// never linked into product binaries). Active only when SLUICE_POWERCUT_DIR=<data dir> and
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
// tests place them. With SLUICE_POWERCUT_KILL_FILE=NAME only writes to
// files named NAME (opened by that base name) count, e.g. "buffer.db" to
// cut inside a WAL checkpoint.
// Thread-safe: one mutex around the model. Writes to untracked fds
// (sockets, other files) only cost a table lookup. A shim failure (shadow
// unwritable) aborts the process with a message on stderr.
#pragma once

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

#pragma GCC visibility push(hidden)
namespace powercut {

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

// Our own I/O on the shadow and on real files: libc's next definitions,
// never the hooks.
int RawOpen(const char* path, int flags, mode_t mode = 0);
int RawClose(int fd);
ssize_t RawPwrite(int fd, const void* buf, size_t n, off64_t off);
int RawFtruncate(int fd, off64_t len);
[[noreturn]] void Die(const std::string& what);

constexpr int kFdTable = 65536;
constexpr uint64_t kNoShrink = UINT64_MAX;

struct Inode {
  bool is_dir = false;
  std::map<uint64_t, uint64_t> dirty;  // start -> end, disjoint, not adjacent
  uint64_t min_size = kNoShrink;       // smallest size since the last sync
  int lw_fd = -1;                      // files/ID.lw, opened on first write
  bool kill_file = false;              // its name is SLUICE_POWERCUT_KILL_FILE
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
  std::string kill_file;       // SLUICE_POWERCUT_KILL_FILE: count only its writes
  uint64_t kill_file_writes = 0;
  std::map<std::pair<dev_t, ino_t>, uint64_t> by_ino;  // live files only
  std::map<uint64_t, Inode> inodes;
  std::map<uint64_t, std::map<std::string, uint64_t>> durable;  // dir -> name -> id
  std::map<int, uint64_t> fds;
  std::vector<Mapping> maps;
};

extern std::atomic<bool> g_active;
extern std::atomic<uint8_t> g_tracked[kFdTable];
extern std::atomic<int> g_high_fds;  // tracked fds >= kFdTable
extern std::atomic<int> g_mappings;
extern State* g_state;

inline bool MaybeTracked(int fd) {
  if (!g_active.load(std::memory_order_relaxed) || fd < 0) return false;
  if (fd < kFdTable) return g_tracked[fd].load(std::memory_order_relaxed) != 0;
  return g_high_fds.load() > 0;
}


void SetTracked(State& s, int fd, uint64_t id);
void Untrack(State& s, int fd);
// fsync/fdatasync of fd succeeded: its data and size (file) or its entries
// (directory) become durable.
void OnSync(int fd);
// A new fd from open*: tracked if it is a file or directory under the data
// dir. `existed` is false when an O_CREAT open found no file before.
int OnOpen(int fd, int flags, bool existed);
bool ExistsAt(int dirfd, const char* path, int flags);
// A write of n bytes at off to tracked fd succeeded. Caller holds the mutex.
void RecordWrite(State& s, int fd, uint64_t off, const struct iovec* iov, int iovcnt, size_t n);
void AfterPwrite(int fd, ssize_t r, off64_t off, const struct iovec* iov, int iovcnt);
void AddRange(Inode& in, uint64_t lo, uint64_t hi);
// Makes the dirty ranges of `id` within [lo, hi) durable, reading the real
// file through `fd`; with `with_size` also its size. Caller holds the mutex.
void DataSync(State& s, uint64_t id, int fd, uint64_t lo, uint64_t hi, bool with_size);
void SyncAll(State& s);  // syncfs, sync. Caller holds the mutex.
int TruncateFd(int fd, off64_t len, FtruncFn real);
int FallocateFd(int fd, int mode, off64_t off, off64_t len, bool posix);

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

}  // namespace powercut
#pragma GCC visibility pop
