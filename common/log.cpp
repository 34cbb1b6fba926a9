#include "common/log.h"

#include <unistd.h>

namespace sluice {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "ERROR";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kDebug: return "DEBUG";
  }
  return "?";
}
}  // namespace

bool ParseLogLevel(const std::string& text, LogLevel* out) {
  if (text == "error") *out = LogLevel::kError;
  else if (text == "warn") *out = LogLevel::kWarn;
  else if (text == "info") *out = LogLevel::kInfo;
  else if (text == "debug") *out = LogLevel::kDebug;
  else return false;
  return true;
}

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) <= g_level.load(); }

void Log(LogLevel level, const char* component, const std::string& message) {
  if (!LogEnabled(level)) return;
  std::string line;
  line.reserve(message.size() + 32);
  line += LevelName(level);
  line += ' ';
  line += component;
  line += ": ";
  for (char c : message) line += (c == '\n') ? ' ' : c;
  line += '\n';
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;  // stderr gone: nothing better to do
    off += static_cast<size_t>(n);
  }
}

bool RateLimitedLog::Log(const std::string& message) {
  uint64_t suppressed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = clock_.NowMonotonicUs();
    if (now - last_us_ < interval_us_) {
      ++suppressed_;
      return false;
    }
    last_us_ = now;
    suppressed = suppressed_;
    suppressed_ = 0;
  }
  if (suppressed == 0) {
    sluice::Log(level_, component_, message);
  } else {
    sluice::Log(level_, component_,
                message + " (+" + std::to_string(suppressed) + " suppressed)");
  }
  return true;
}

}  // namespace sluice
