// Status and StatusOr: the error currency across component boundaries.
// Exceptions never cross a component boundary; adapters around throwing
// libraries (Paho, toml++) convert them into Status.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace sluice {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad config, bad input line, bad usage
  kNotFound,
  kIoError,          // an OS or SQLite I/O failure
  kCorruption,       // a corrupt database or payload
  kFull,             // disk or database full (SQLITE_FULL / ENOSPC)
  kUnavailable,      // peer down, queue closed, try again later
  kTimeout,
  kInternal,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "ok" or "<code name>: <message>".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
inline Status IoError(std::string m) {
  return Status(StatusCode::kIoError, std::move(m));
}
inline Status Corruption(std::string m) {
  return Status(StatusCode::kCorruption, std::move(m));
}
inline Status Unavailable(std::string m) {
  return Status(StatusCode::kUnavailable, std::move(m));
}
inline Status Internal(std::string m) {
  return Status(StatusCode::kInternal, std::move(m));
}

// Why a file of the data_dir could not be stat'ed or opened (errno `err`),
// naming the real cause: kNotFound "PATH: no such file (is data_dir
// right?)" for ENOENT; kIoError "PATH: Permission denied (...)" with a hint
// for EACCES/EPERM; kIoError "PATH: <strerror>" for anything else.
Status DataFileError(const std::string& path, int err);

// Either a value or a non-ok Status.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok());
    if (status_.ok()) status_ = Internal("StatusOr built from an ok Status");
  }
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace sluice

#define SLUICE_RETURN_IF_ERROR(expr)        \
  do {                                      \
    ::sluice::Status _st = (expr);          \
    if (!_st.ok()) return _st;              \
  } while (0)
