// Small RAII helpers around the SQLite C API for buffer/. Not thread-safe:
// each object belongs to the thread that owns its connection.
#pragma once

#include "buffer/internal/private.h"

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"

namespace sluice {
namespace sql {

// True for SQLITE_FULL and for an I/O error whose errno is ENOSPC.
bool IsFull(sqlite3* db, int rc);
// True for results that mean "this file is not a usable database".
bool IsCorrupt(int rc);

// Status for a failed SQLite call: kFull, kCorruption or kIoError, with the
// SQLite message and `what`.
Status Error(sqlite3* db, int rc, const std::string& what);

// Runs one or more statements without results.
Status Exec(sqlite3* db, const char* sql);

// Runs a single-row single-integer query (e.g. "PRAGMA user_version").
Status QueryInt(sqlite3* db, const char* sql, int64_t* out);

// Runs `sql`, calling row(stmt) for each result row. The error of a failed
// prepare or step names `sql`.
Status ForEachRow(sqlite3* db, const std::string& sql,
                  const std::function<void(sqlite3_stmt*)>& row);

// Column `col` of the current row as text ("" for NULL).
std::string ColumnText(sqlite3_stmt* st, int col);

// An owned connection; closes on destruction (result logged if not OK).
class Db {
 public:
  Db() = default;
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Opens `path` with `flags` (SQLITE_OPEN_*); NOMUTEX is always added.
  Status Open(const std::string& path, int flags);
  // Closes; every statement must be finalized first.
  Status Close();
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

// An owned prepared statement; finalizes on destruction.
class Stmt {
 public:
  Stmt() = default;
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status Prepare(sqlite3* db, const char* sql);
  // Finalizes; returns the error of the last failed step, if any.
  Status Finalize();
  sqlite3_stmt* get() const { return st_; }
  // sqlite3_step; returns SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(st_); }
  // Resets and clears bindings. Errors here repeat the last step's error,
  // which the caller has already handled.
  void Reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
  }
  // Steps once expecting SQLITE_DONE, then resets.
  Status Run(const char* what);

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* st_ = nullptr;
};

}  // namespace sql
}  // namespace sluice
