// The hooks of the power-cut shim (libc symbols it interposes): see
// powercut_shim.h.
#include "tests/support/powercut_shim.h"

using namespace powercut;

namespace {

mode_t ModeArg(int flags, va_list ap) {
  return (flags & (O_CREAT | __O_TMPFILE)) ? static_cast<mode_t>(va_arg(ap, int)) : 0;
}

}  // namespace

// The only symbols the library exports (built with hidden visibility).
#pragma GCC visibility push(default)
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
#pragma GCC visibility pop
