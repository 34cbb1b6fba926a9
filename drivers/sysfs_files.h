// Small, bounded file helpers shared by the file-based drivers (sysfs,
// hwmon, iio, w1): read one attribute file, parse one number, find a device
// directory by the content of its `name` file. Stateless; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "drivers/driver.h"
#include "drivers/params.h"

namespace sluice {

// Reads `path` whole (at most `max_bytes`; sysfs attributes are one page).
// Errors: IoError "cannot read PATH: strerror" (missing file, permission,
// EIO from a device), "PATH: more than N bytes".
StatusOr<std::string> ReadAttribute(const std::string& path, size_t max_bytes = 4096);

// `text` without leading and trailing whitespace.
std::string TrimSpace(const std::string& text);

// The one finite decimal number in `text` (surrounding whitespace allowed).
// Errors name `path`: "PATH: empty", "PATH: not a number: \"...\"",
// "PATH: not a finite number: \"nan\"".
StatusOr<double> ParseNumber(const std::string& text, const std::string& path);

// ReadAttribute() + ParseNumber().
StatusOr<double> ReadNumber(const std::string& path);

// True if `path` exists (any type).
bool PathExists(const std::string& path);

// Entries of directory `dir` (no "." and ".."), sorted naturally
// ("hwmon2" before "hwmon10"). Errors: IoError when `dir` is unreadable.
StatusOr<std::vector<std::string>> ListDir(const std::string& dir);

// The entries of `dir` whose `<dir>/<entry>/name` file holds `name` (after
// trimming), in natural order. Errors: `dir` unreadable.
StatusOr<std::vector<std::string>> FindByNameFile(const std::string& dir, const std::string& name);

// The `root` param of a file-based driver: absolute; default
// ctx.sysfs_root + `below` (e.g. "/class/hwmon").
StatusOr<std::string> RootParam(Params& params, const DriverContext& ctx, const std::string& below);

// A param naming one directory entry (no '/', not "." or ".."), required.
StatusOr<std::string> EntryNameParam(Params& params, const std::string& key);

// Base of the drivers that find their files by content (hwmon, iio, w1 by
// family): Sample() reads what Resolve() found; when that read fails (or
// nothing is resolved yet) it resolves again and, if the files moved
// (hwmon1 -> hwmon3), reads once more within the same Sample(). blocking():
// true. Worker pool thread (one Sample() at a time).
class ResolvingFileDriver : public Driver {
 public:
  bool polled() const override { return true; }
  bool blocking() const override { return true; }
  StatusOr<double> Sample(int64_t wall_us) final;

 protected:
  // Finds the files; on success location() is non-empty and names them.
  virtual Status Resolve() = 0;
  // Reads the resolved files (REQUIRES: location() non-empty).
  virtual StatusOr<double> ReadResolved() = 0;
  // Call once from the derived constructor: an absent device then fails
  // the first read instead of the daemon's start.
  void ResolveAtStart() { (void)Resolve(); }

 public:
  // What Resolve() found ("" while unresolved).
  const std::string& location() const { return location_; }

 protected:
  std::string location_;
};

}  // namespace sluice
