#include "buffer/internal/sqlite_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace sluice {
namespace sql {

bool IsFull(sqlite3* db, int rc) {
  int primary = rc & 0xff;
  if (primary == SQLITE_FULL) return true;
  if (primary == SQLITE_IOERR && db != nullptr &&
      sqlite3_system_errno(db) == ENOSPC) {
    return true;
  }
  return false;
}

bool IsCorrupt(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

Status Error(sqlite3* db, int rc, const std::string& what) {
  std::string msg = what + ": " + sqlite3_errstr(rc);
  if (db != nullptr && sqlite3_errcode(db) == rc &&
      std::strcmp(sqlite3_errmsg(db), sqlite3_errstr(rc)) != 0) {
    msg += " (";
    msg += sqlite3_errmsg(db);
    msg += ")";
  }
  // The OS's reason for a failed open or I/O ("Read-only file system").
  const int primary = rc & 0xff;
  if (db != nullptr && (primary == SQLITE_IOERR || primary == SQLITE_READONLY ||
                        primary == SQLITE_PERM)) {
    if (int e = sqlite3_system_errno(db); e != 0) msg += std::string(": ") + std::strerror(e);
  }
  if (IsFull(db, rc)) return Status(StatusCode::kFull, msg);
  if (IsCorrupt(rc)) return Corruption(msg);
  return IoError(msg);
}

Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = std::string(sql).substr(0, 60);
    if (err != nullptr) {
      msg += ": ";
      msg += err;
    }
    sqlite3_free(err);
    return Error(db, rc, msg);
  }
  return Status::Ok();
}

Status QueryInt(sqlite3* db, const char* sql, int64_t* out) {
  Stmt st;
  SLUICE_RETURN_IF_ERROR(st.Prepare(db, sql));
  int rc = st.Step();
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(st.get(), 0);
    rc = st.Step();
  }
  if (rc != SQLITE_DONE) return Error(db, rc, sql);
  return st.Finalize();
}

Status ForEachRow(sqlite3* db, const std::string& sql,
                  const std::function<void(sqlite3_stmt*)>& row) {
  Stmt st;
  SLUICE_RETURN_IF_ERROR(st.Prepare(db, sql.c_str()));
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) row(st.get());
  if (rc != SQLITE_DONE) return Error(db, rc, sql);
  return Status::Ok();
}

std::string ColumnText(sqlite3_stmt* st, int col) {
  const unsigned char* t = sqlite3_column_text(st, col);
  return t ? reinterpret_cast<const char*>(t) : "";
}

Db::~Db() {
  Status s = Close();
  if (!s.ok()) LogError("buffer", "close: " + s.ToString());
}

Status Db::Open(const std::string& path, int flags) {
  SLUICE_RETURN_IF_ERROR(Close());
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    Status s = Error(db_, rc, "open " + path);
    if ((rc & 0xff) == SQLITE_CANTOPEN) {
      // SQLite's own errno is that of its last attempt (often a read-only
      // retry: ENOENT); open the file as SQLite first tried to, for the reason.
      int oflags = ((flags & SQLITE_OPEN_READWRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC |
                   ((flags & SQLITE_OPEN_CREATE) ? O_CREAT : 0);
      int fd = ::open(path.c_str(), oflags, 0644);
      if (fd >= 0) ::close(fd);
      else s = Status(s.code(), s.message() + ": " + std::strerror(errno));
    }
    sqlite3_close_v2(db_);  // a failed open still allocates a handle
    db_ = nullptr;
    return s;
  }
  sqlite3_extended_result_codes(db_, 1);
  return Status::Ok();
}

Status Db::Close() {
  if (db_ == nullptr) return Status::Ok();
  int rc = sqlite3_close(db_);
  if (rc != SQLITE_OK) {
    Status s = Error(db_, rc, "close");
    // Unfinalized statements: fall back to a deferred close so the handle
    // is not leaked; report the bug.
    sqlite3_close_v2(db_);
    db_ = nullptr;
    return s;
  }
  db_ = nullptr;
  return Status::Ok();
}

Stmt::~Stmt() { (void)Finalize(); }

Status Stmt::Prepare(sqlite3* db, const char* sql) {
  SLUICE_RETURN_IF_ERROR(Finalize());
  db_ = db;
  int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st_,
                              nullptr);
  if (rc != SQLITE_OK) {
    st_ = nullptr;
    return Error(db, rc, std::string("prepare ") + sql);
  }
  return Status::Ok();
}

Status Stmt::Finalize() {
  if (st_ == nullptr) return Status::Ok();
  // sqlite3_finalize returns the error of the most recent failed step,
  // which the caller has already seen and handled; only misuse matters.
  int rc = sqlite3_finalize(st_);
  st_ = nullptr;
  if ((rc & 0xff) == SQLITE_MISUSE) return Error(db_, rc, "finalize");
  return Status::Ok();
}

Status Stmt::Run(const char* what) {
  int rc = Step();
  Status s;
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) s = Error(db_, rc, what);
  Reset();
  return s;
}

}  // namespace sql
}  // namespace sluice
