#include "common/mqtt_text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace {
// An MQTT password is at most 65,535 bytes (plus a line ending).
constexpr size_t kMaxPasswordFileBytes = 65537;
}  // namespace

namespace sluice {

std::string ConnackReason(int rc) {
  static const char* kConnack[] = {
      "accepted",           "unacceptable protocol version", "identifier rejected",
      "server unavailable", "bad user name or password",     "not authorized"};
  std::string s = "refused by the broker: CONNACK rc " + std::to_string(rc);
  if (rc > 0 && rc <= 5) s += std::string(" (") + kConnack[rc] + ")";
  return s;
}

StatusOr<std::string> ReadPasswordFile(const std::string& path) {
  auto fail = [&](const std::string& why) {
    return InvalidArgument("password_file '" + path + "' cannot be read: " + why);
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return fail(std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return fail(std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(S_ISDIR(st.st_mode) ? "it is a directory" : "it is not a regular file");
  }
  std::string pw;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return fail(std::strerror(e));
    }
    if (n == 0) break;
    pw.append(buf, static_cast<size_t>(n));
    if (pw.size() > kMaxPasswordFileBytes) {
      ::close(fd);
      return fail("longer than " + std::to_string(kMaxPasswordFileBytes) + " bytes");
    }
  }
  ::close(fd);
  while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
  return pw;
}

std::string SystemErrorText(int err) {
  if (err == 0) return "connection failed or closed (the system reported no reason)";
  return std::strerror(err);
}

}  // namespace sluice
