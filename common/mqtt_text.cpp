#include "common/mqtt_text.h"

#include <cstring>

#include <fstream>
#include <sstream>

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
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("password_file '" + path + "' cannot be read");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string pw = ss.str();
  while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
  return pw;
}

std::string SystemErrorText(int err) {
  if (err == 0) return "connection failed or closed (the system reported no reason)";
  return std::strerror(err);
}

}  // namespace sluice
