#include "common/units.h"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <limits>

namespace sluice {
namespace {

// Splits "<digits><suffix>"; digits may contain '_' separators.
bool SplitNumber(const std::string& text, uint64_t* number, std::string* suffix) {
  size_t i = 0;
  uint64_t n = 0;
  bool any = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '_' && any) continue;
    if (!std::isdigit(static_cast<unsigned char>(c))) break;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (n > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    n = n * 10 + d;
    any = true;
  }
  if (!any) return false;
  *number = n;
  *suffix = text.substr(i);
  return true;
}

}  // namespace

StatusOr<int64_t> ParseDuration(const std::string& text) {
  uint64_t n;
  std::string unit;
  if (!SplitNumber(text, &n, &unit) || unit.empty()) {
    return InvalidArgument("bad duration \"" + text +
                           "\": expected a whole number and a unit, e.g. 250ms, 5s, 10m, 2h, 1d");
  }
  uint64_t mult;
  if (unit == "us") mult = 1;
  else if (unit == "ms") mult = 1000;
  else if (unit == "s") mult = 1000000;
  else if (unit == "m") mult = 60ull * 1000000;
  else if (unit == "h") mult = 3600ull * 1000000;
  else if (unit == "d") mult = 86400ull * 1000000;
  else
    return InvalidArgument("bad duration \"" + text + "\": unknown unit \"" + unit +
                           "\" (use us, ms, s, m, h or d)");
  if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / mult) {
    return InvalidArgument("duration \"" + text + "\" is too large");
  }
  return static_cast<int64_t>(n * mult);
}

StatusOr<uint64_t> ParseSize(const std::string& text) {
  uint64_t n;
  std::string unit;
  if (!SplitNumber(text, &n, &unit)) {
    return InvalidArgument("bad size \"" + text +
                           "\": expected a whole number and a unit, e.g. 512KiB, 256MiB, 1GiB");
  }
  uint64_t mult;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB") mult = 1ull << 10;
  else if (unit == "MiB") mult = 1ull << 20;
  else if (unit == "GiB") mult = 1ull << 30;
  else if (unit == "TiB") mult = 1ull << 40;
  else if (unit == "KB" || unit == "kB") mult = 1000;
  else if (unit == "MB") mult = 1000ull * 1000;
  else if (unit == "GB") mult = 1000ull * 1000 * 1000;
  else
    return InvalidArgument("bad size \"" + text + "\": unknown unit \"" + unit +
                           "\" (use B, KiB, MiB, GiB, KB, MB or GB)");
  if (mult != 1 && n > std::numeric_limits<uint64_t>::max() / mult) {
    return InvalidArgument("size \"" + text + "\" is too large");
  }
  return n * mult;
}

std::string FormatUtc(int64_t ts_us, bool with_millis) {
  // Floor division, so times before 1970 (RTC-less boots) format right too.
  int64_t secs = ts_us / 1000000;
  int64_t rem_us = ts_us % 1000000;
  if (rem_us < 0) {
    --secs;
    rem_us += 1000000;
  }
  const time_t t = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (with_millis) {
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(rem_us / 1000));
  } else {
    std::snprintf(buf + n, sizeof buf - n, "Z");
  }
  return buf;
}

std::string FormatDuration(int64_t us) {
  char buf[64];
  if (us < 0) return "-" + FormatDuration(-us);
  if (us < 1000) std::snprintf(buf, sizeof buf, "%lldus", static_cast<long long>(us));
  else if (us < 1000000) std::snprintf(buf, sizeof buf, "%.1fms", us / 1e3);
  else if (us < 60ll * 1000000) std::snprintf(buf, sizeof buf, "%.1fs", us / 1e6);
  else if (us < 3600ll * 1000000) std::snprintf(buf, sizeof buf, "%.1fm", us / 60e6);
  else if (us < 86400ll * 1000000) std::snprintf(buf, sizeof buf, "%.1fh", us / 3600e6);
  else std::snprintf(buf, sizeof buf, "%.1fd", us / 86400e6);
  return buf;
}

}  // namespace sluice
