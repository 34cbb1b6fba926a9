#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace sluice {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kIoError: return "I/O error";
    case StatusCode::kCorruption: return "corruption";
    case StatusCode::kFull: return "full";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kTimeout: return "timeout";
    case StatusCode::kInternal: return "internal error";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

Status DataFileError(const std::string& path, int err) {
  if (err == ENOENT) {
    return Status(StatusCode::kNotFound, path + ": no such file (is data_dir right?)");
  }
  std::string m = path + ": " + std::strerror(err);
  if (err == EACCES || err == EPERM) {
    m += " (this user may not read the data_dir: run as root or as the daemon's user or group)";
  }
  return IoError(std::move(m));
}

}  // namespace sluice
