#include "drivers/sysfs_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "drivers/driver.h"

namespace sluice {
namespace {

// "hwmon2" < "hwmon10": digit runs compare as numbers.
bool NaturalLess(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) &&
        std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t i2 = i, j2 = j;
      while (i2 < a.size() && std::isdigit(static_cast<unsigned char>(a[i2]))) ++i2;
      while (j2 < b.size() && std::isdigit(static_cast<unsigned char>(b[j2]))) ++j2;
      std::string na = a.substr(i, i2 - i), nb = b.substr(j, j2 - j);
      na.erase(0, std::min(na.find_first_not_of('0'), na.size()));
      nb.erase(0, std::min(nb.find_first_not_of('0'), nb.size()));
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = i2;
      j = j2;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text.substr(0, 40)) {
    out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  }
  return out + (text.size() > 40 ? "...\"" : "\"");
}

}  // namespace

StatusOr<std::string> ReadAttribute(const std::string& path, size_t max_bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot read " + path + ": " + std::strerror(errno));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return IoError("cannot read " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      close(fd);
      return IoError(path + ": more than " + std::to_string(max_bytes) + " bytes");
    }
  }
  close(fd);
  return out;
}

std::string TrimSpace(const std::string& text) {
  size_t b = 0, e = text.size();
  while (b < e && std::isspace(static_cast<unsigned char>(text[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(text[e - 1]))) --e;
  return text.substr(b, e - b);
}

StatusOr<double> ParseNumber(const std::string& text, const std::string& path) {
  std::string t = TrimSpace(text);
  if (t.empty()) return IoError(path + ": empty");
  // Plain decimal only: strtod alone would also take hex floats.
  for (char c : t) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && std::strchr("+-.eE", c) == nullptr) {
      std::string lower = t;
      for (char& l : lower) l = static_cast<char>(std::tolower(static_cast<unsigned char>(l)));
      bool nonfinite =
          lower.find("nan") != std::string::npos || lower.find("inf") != std::string::npos;
      return IoError(path + (nonfinite ? ": not a finite number: " : ": not a number: ") +
                     Quote(t));
    }
  }
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return IoError(path + ": not a number: " + Quote(t));
  if (errno == ERANGE || !std::isfinite(v)) {
    return IoError(path + ": not a finite number: " + Quote(t));
  }
  return v;
}

StatusOr<double> ReadNumber(const std::string& path) {
  StatusOr<std::string> text = ReadAttribute(path);
  if (!text.ok()) return text.status();
  return ParseNumber(*text, path);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return IoError("cannot list " + dir + ": " + std::strerror(errno));
  std::vector<std::string> out;
  while (dirent* ent = readdir(d)) {
    std::string n = ent->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  closedir(d);
  std::sort(out.begin(), out.end(), NaturalLess);
  return out;
}

StatusOr<std::vector<std::string>> FindByNameFile(const std::string& dir, const std::string& name) {
  StatusOr<std::vector<std::string>> entries = ListDir(dir);
  if (!entries.ok()) return entries.status();
  std::vector<std::string> out;
  for (const std::string& e : *entries) {
    StatusOr<std::string> content = ReadAttribute(dir + "/" + e + "/name");
    if (content.ok() && TrimSpace(*content) == name) out.push_back(e);
  }
  return out;
}

StatusOr<std::string> RootParam(Params& params, const DriverContext& ctx,
                                const std::string& below) {
  StatusOr<std::string> root = params.String("root", ctx.sysfs_root + below);
  if (!root.ok()) return root.status();
  if (root->empty() || (*root)[0] != '/') return params.ErrorAt("root", "must be an absolute path");
  while (root->size() > 1 && root->back() == '/') root->pop_back();
  return root;
}

StatusOr<std::string> EntryNameParam(Params& params, const std::string& key) {
  StatusOr<std::string> v = params.RequiredString(key);
  if (!v.ok()) return v.status();
  if (v->empty() || *v == "." || *v == ".." || v->find('/') != std::string::npos) {
    return params.ErrorAt(key, "must name one directory entry (no '/'), got \"" + *v + "\"");
  }
  return v;
}

StatusOr<double> ResolvingFileDriver::Sample(int64_t /*wall_us*/) {
  if (!location_.empty()) {
    StatusOr<double> v = ReadResolved();
    if (v.ok()) return v;
    const std::string old = location_;
    Status st = Resolve();
    if (!st.ok() || location_ == old) return v.status();
  } else {
    Status st = Resolve();
    if (!st.ok()) {
      location_.clear();
      return st;
    }
  }
  StatusOr<double> v = ReadResolved();
  if (!v.ok()) location_.clear();
  return v;
}

}  // namespace sluice
