#include "drivers/w1.h"

#include <strings.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace sluice {
namespace {

bool IsFamilyCode(const std::string& s) {
  return s.size() == 2 && std::isxdigit(static_cast<unsigned char>(s[0])) &&
         std::isxdigit(static_cast<unsigned char>(s[1]));
}

// The family code ("28") of the device directory holding `path`
// (".../28-0000075d1c2a/w1_slave"), or "".
std::string FamilyOfPath(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "";
  size_t start = path.rfind('/', slash - 1);
  start = start == std::string::npos ? 0 : start + 1;
  std::string dir = path.substr(start, slash - start);
  if (dir.size() < 4 || dir[2] != '-' || !IsFamilyCode(dir.substr(0, 2))) return "";
  return dir.substr(0, 2);
}

}  // namespace

bool W1FamilyRange(const std::string& family, W1Range* out) {
  struct Known {
    const char* family;
    W1Range range;
  };
  // Datasheet measuring ranges, in C.
  static const Known kKnown[] = {
      {"10", {-55, 125, "DS18S20"}},           {"22", {-55, 125, "DS1822"}},
      {"28", {-55, 125, "DS18B20"}},           {"42", {-40, 85, "DS28EA00"}},
      {"3b", {-270, 1800, "DS1825/MAX31850"}},  // MAX31850: thermocouple range
  };
  for (const Known& k : kKnown) {
    if (strcasecmp(k.family, family.c_str()) == 0) {
      *out = k.range;
      return true;
    }
  }
  return false;
}

StatusOr<double> ParseW1Slave(const std::string& text, const std::string& path) {
  const size_t nl = text.find('\n');
  if (TrimSpace(text).empty()) return IoError(path + ": empty");
  if (nl == std::string::npos) return IoError(path + ": malformed (one line, expected two)");
  const std::string first = TrimSpace(text.substr(0, nl));
  const std::string second = TrimSpace(text.substr(nl + 1));
  const size_t crc = first.find("crc=");
  if (crc == std::string::npos) return IoError(path + ": malformed (no crc= on the first line)");
  const std::string verdict = TrimSpace(first.substr(
      first.find(' ', crc) == std::string::npos ? first.size() : first.find(' ', crc)));
  if (verdict != "YES") {
    return IoError(path + ": CRC check failed (" + first.substr(crc) + ")");
  }
  // The scratchpad bytes before the ':' on the first line.
  const std::string bytes = first.substr(0, first.find(':'));
  bool all_zero = !TrimSpace(bytes).empty();
  for (char c : bytes) {
    if (c != '0' && !std::isspace(static_cast<unsigned char>(c))) all_zero = false;
  }
  if (all_zero) return IoError(path + ": all-zero scratchpad (the device does not answer)");
  const size_t t = second.rfind("t=");
  if (t == std::string::npos) return IoError(path + ": malformed (no t= on the second line)");
  const std::string digits = second.substr(t + 2);
  errno = 0;
  char* end = nullptr;
  long milli = std::strtol(digits.c_str(), &end, 10);
  if (digits.empty() || end != digits.c_str() + digits.size() || errno == ERANGE) {
    return IoError(path + ": malformed t= value \"" + digits.substr(0, 20) + "\"");
  }
  if (milli == 85000) {
    return IoError(path + ": power-on reset value 85000 (no conversion was done)");
  }
  const double c = static_cast<double>(milli) / 1000.0;
  W1Range range;
  if (W1FamilyRange(FamilyOfPath(path), &range) && (c < range.min_c || c > range.max_c)) {
    char buf[160];
    snprintf(buf, sizeof(buf), ": %.3f C is outside the %s's range (%g to %g C)", c, range.part,
             range.min_c, range.max_c);
    return IoError(path + buf);
  }
  return c;
}

W1Driver::W1Driver(std::string root, std::string device)
    : root_(std::move(root)), device_(std::move(device)) {
  ResolveAtStart();
}

Status W1Driver::Resolve() {
  location_.clear();
  if (!IsFamilyCode(device_)) {
    location_ = root_ + "/" + device_ + "/w1_slave";
    return Status::Ok();
  }
  StatusOr<std::vector<std::string>> entries = ListDir(root_);
  if (!entries.ok()) return entries.status();
  std::vector<std::string> found;
  for (const std::string& e : *entries) {
    if (e.size() > 3 && e[2] == '-' && strncasecmp(e.c_str(), device_.c_str(), 2) == 0) {
      found.push_back(e);
    }
  }
  if (found.empty()) {
    return IoError("no 1-Wire device of family " + device_ + " under " + root_);
  }
  if (found.size() > 1) {
    std::string list;
    for (const std::string& f : found) list += (list.empty() ? "" : ", ") + f;
    return IoError(std::to_string(found.size()) + " 1-Wire devices of family " + device_ +
                   " under " + root_ + " (" + list + "): name one in param \"device\"");
  }
  location_ = root_ + "/" + found[0] + "/w1_slave";
  return Status::Ok();
}

StatusOr<double> W1Driver::ReadResolved() {
  StatusOr<std::string> text = ReadAttribute(location_);
  if (!text.ok()) return text.status();
  return ParseW1Slave(*text, location_);
}

StatusOr<std::unique_ptr<Driver>> CreateW1Driver(const SensorSpec& /*spec*/, Params& params,
                                                 DriverContext& ctx) {
  StatusOr<std::string> device = EntryNameParam(params, "device");
  if (!device.ok()) return device.status();
  if (!IsFamilyCode(*device) &&
      (device->size() < 4 || (*device)[2] != '-' || !IsFamilyCode(device->substr(0, 2)))) {
    return params.ErrorAt("device",
                          "must be a 1-Wire id like \"28-0000075d1c2a\" or a family "
                          "code like \"28\", got \"" +
                              *device + "\"");
  }
  StatusOr<std::string> root = RootParam(params, ctx, "/bus/w1/devices");
  if (!root.ok()) return root.status();
  return std::unique_ptr<Driver>(new W1Driver(*root, *device));
}

}  // namespace sluice
