#include "drivers/line_protocol.h"

#include <cmath>
#include <cstdlib>
#include <limits>

namespace sluice {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string Printable(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string out;
  for (char c : s.substr(0, kMax)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  if (s.size() > kMax) out += "...";
  return out;
}

}  // namespace

bool ValidSensorName(std::string_view name) {
  if (name.empty() || name.size() > kMaxSensorNameBytes) return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool BlankLine(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (IsSpace(c)) continue;
    if (c == '\r' && i + 1 == line.size()) continue;
    return false;
  }
  return true;
}

Status ParseLine(std::string_view line, ParsedLine* out) {
  if (line.size() > kMaxLineBytes) {
    return InvalidArgument("line longer than " + std::to_string(kMaxLineBytes) + " bytes");
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string_view fields[4];
  size_t n = 0;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    if (i >= line.size()) break;
    size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    if (n == 3) {
      return InvalidArgument("extra fields (expected SENSOR VALUE [TS_US]): \"" +
                             Printable(line) + "\"");
    }
    fields[n++] = line.substr(start, i - start);
  }
  if (n < 2) {
    return InvalidArgument("missing value (expected SENSOR VALUE [TS_US]): \"" +
                           Printable(line) + "\"");
  }
  if (!ValidSensorName(fields[0])) {
    return InvalidArgument("bad sensor name \"" + Printable(fields[0]) +
                           "\" (expected [A-Za-z0-9._-]{1,128})");
  }
  // strtod needs a terminated string; the token is bounded by kMaxLineBytes.
  std::string value_text(fields[1]);
  char* end = nullptr;
  double value = std::strtod(value_text.c_str(), &end);
  if (end != value_text.c_str() + value_text.size()) {
    return InvalidArgument("bad value \"" + Printable(fields[1]) + "\" for sensor \"" +
                           std::string(fields[0]) + "\"");
  }
  if (!std::isfinite(value)) {
    return InvalidArgument("value \"" + Printable(fields[1]) + "\" for sensor \"" +
                           std::string(fields[0]) + "\" is not finite");
  }
  out->sensor.assign(fields[0].data(), fields[0].size());
  out->value = value;
  out->has_ts = false;
  out->ts_us = 0;
  if (n == 3) {
    int64_t ts = 0;
    for (char c : fields[2]) {
      if (c < '0' || c > '9') {
        return InvalidArgument("bad timestamp \"" + Printable(fields[2]) +
                               "\" (expected integer microseconds)");
      }
      int d = c - '0';
      if (ts > (std::numeric_limits<int64_t>::max() - d) / 10) {
        return InvalidArgument("timestamp \"" + Printable(fields[2]) + "\" is too large");
      }
      ts = ts * 10 + d;
    }
    out->has_ts = true;
    out->ts_us = ts;
  }
  return Status::Ok();
}

std::vector<std::string_view> SplitDatagram(std::string_view datagram) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < datagram.size()) {
    size_t nl = datagram.find('\n', start);
    size_t end = nl == std::string_view::npos ? datagram.size() : nl;
    std::string_view line = datagram.substr(start, end - start);
    if (!BlankLine(line)) lines.push_back(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return lines;
}

}  // namespace sluice
