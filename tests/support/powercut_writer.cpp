// A program for tests/support/powercut_test.cpp: run under the power-cut
// shim, it performs one file-operation pattern in DIR and exits without any
// cleanup (as abruptly as a power cut):
//   powercut_writer SCENARIO DIR
// Exit 0 when every operation succeeded, 1 (with a message) otherwise.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace {

std::string g_dir;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "powercut_writer: %s: %s\n", what.c_str(), std::strerror(errno));
  _exit(1);
}

std::string P(const std::string& name) { return g_dir + "/" + name; }

int Open(const std::string& name, int flags) {
  int fd = ::open(P(name).c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) Fail("open " + name);
  return fd;
}

void Write(int fd, const std::string& data) {
  if (::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) Fail("write");
}

void Pwrite(int fd, const std::string& data, off_t off) {
  if (::pwrite(fd, data.data(), data.size(), off) != static_cast<ssize_t>(data.size())) {
    Fail("pwrite");
  }
}

void Fsync(int fd) {
  if (::fsync(fd) != 0) Fail("fsync");
}

void SyncDir(const std::string& rel = "") {
  int fd = ::open(rel.empty() ? g_dir.c_str() : P(rel).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0 || ::close(fd) != 0) Fail("fsync dir " + rel);
}

// Data: synced survives, unsynced vanishes, an fsynced file whose directory
// was never synced vanishes, a dir-synced file with unsynced data is empty.
void Data() {
  int a = Open("a", O_RDWR | O_CREAT);
  Write(a, "durable");
  Fsync(a);
  SyncDir();
  Pwrite(a, "+lost", 7);         // never synced
  Pwrite(a, "D", 0);             // overwrite of synced bytes, never synced
  int c = Open("c", O_WRONLY | O_CREAT);  // entry made durable below, data not
  Write(c, "unsynced");
  int d = Open("d", O_WRONLY | O_CREAT | O_APPEND);
  Write(d, "one,");
  Fsync(d);
  int d2 = ::dup(d);             // writes through a dup'd fd count too
  Write(d2, "two");
  if (::fdatasync(d) != 0) Fail("fdatasync d");
  Write(d2, ",three");           // never synced
  SyncDir();
  int b = Open("b", O_RDWR | O_CREAT);  // created after the last dir sync
  Write(b, "synced, dir not");
  if (::fdatasync(b) != 0) Fail("fdatasync b");
  int e = Open("e", O_RDWR | O_CREAT);
  Write(e, "late");
  Fsync(e);
}

// Renames and unlinks are durable only with a sync of their directory.
void Rename(bool sync_dir) {
  int t = Open("target.tmp", O_WRONLY | O_CREAT | O_TRUNC);
  Write(t, "v2");
  Fsync(t);
  if (::rename(P("target.tmp").c_str(), P("target").c_str()) != 0) Fail("rename");
  if (::unlink(P("doomed").c_str()) != 0) Fail("unlink");
  struct iovec v[2] = {{const_cast<char*>("new "), 4}, {const_cast<char*>("file"), 4}};
  int n = Open("sub/new", O_WRONLY | O_CREAT);
  if (::writev(n, v, 2) != 8) Fail("writev");
  Fsync(n);
  if (sync_dir) {
    SyncDir();
    SyncDir("sub");
  }
}

// Size changes: ftruncate and O_TRUNC are durable only once synced.
void Truncate(bool sync) {
  int f = Open("big", O_RDWR);
  if (::ftruncate(f, 10) != 0) Fail("ftruncate");
  if (::ftruncate(f, 20) != 0) Fail("ftruncate");  // regrown: zeros, not old bytes
  int g = Open("small", O_WRONLY | O_TRUNC);
  if (sync) {
    Fsync(f);
    Fsync(g);
  }
}

// A synced 4 KiB file, then an unsynced 4 KiB append: the torn variant
// keeps its first 2 KiB.
void Torn() {
  int f = Open("torn", O_RDWR | O_CREAT);
  Write(f, std::string(4096, 'a'));
  Fsync(f);
  SyncDir();
  Pwrite(f, std::string(4096, 'b'), 4096);
}

// A shared writable mapping synced with msync(MS_SYNC).
void Mmap() {
  int f = Open("mapped", O_RDWR | O_CREAT);
  if (::ftruncate(f, 4096) != 0) Fail("ftruncate");
  Fsync(f);
  SyncDir();
  char* p = static_cast<char*>(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0));
  if (p == MAP_FAILED) Fail("mmap");
  std::memcpy(p, "synced", 6);
  if (::msync(p, 4096, MS_SYNC) != 0) Fail("msync");
  std::memcpy(p + 100, "unsynced", 8);
}

// SQLite in WAL mode: ten committed transactions with synchronous=FULL|OFF.
void Sqlite(const char* sync) {
  sqlite3* db = nullptr;
  if (sqlite3_open(P("t.db").c_str(), &db) != SQLITE_OK) Fail("sqlite3_open");
  std::string setup = std::string("PRAGMA journal_mode=WAL;PRAGMA synchronous=") + sync +
                      ";CREATE TABLE t(x INTEGER);";
  if (sqlite3_exec(db, setup.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) Fail("setup");
  for (int i = 1; i <= 10; ++i) {
    std::string sql = "INSERT INTO t VALUES(" + std::to_string(i) + ")";
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) Fail("insert");
  }
  // No sqlite3_close: the power goes off with the connection open.
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: powercut_writer SCENARIO DIR\n");
    return 2;
  }
  g_dir = argv[2];
  const std::string s = argv[1];
  if (s == "data") Data();
  else if (s == "rename") Rename(false);
  else if (s == "rename-synced") Rename(true);
  else if (s == "truncate") Truncate(false);
  else if (s == "truncate-synced") Truncate(true);
  else if (s == "torn") Torn();
  else if (s == "mmap") Mmap();
  else if (s == "sqlite-full") Sqlite("FULL");
  else if (s == "sqlite-off") Sqlite("OFF");
  else return 2;
  _exit(0);  // no destructors, no close: like the power going off
}
