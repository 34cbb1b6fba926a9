// Logging to stderr, one line per message: `LEVEL component: message`.
// Thread-safe: each line is written with a single write(2).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "common/clock.h"

namespace sluice {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// Parses "error", "warn", "info", "debug". Returns false on anything else.
bool ParseLogLevel(const std::string& text, LogLevel* out);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Writes `LEVEL component: message\n` to stderr if `level` is enabled.
void Log(LogLevel level, const char* component, const std::string& message);

inline void LogError(const char* c, const std::string& m) { Log(LogLevel::kError, c, m); }
inline void LogWarn(const char* c, const std::string& m) { Log(LogLevel::kWarn, c, m); }
inline void LogInfo(const char* c, const std::string& m) { Log(LogLevel::kInfo, c, m); }
inline void LogDebug(const char* c, const std::string& m) {
  if (LogEnabled(LogLevel::kDebug)) Log(LogLevel::kDebug, c, m);
}

// Logs at most one line per `interval_us`; lines suppressed in between are
// counted and reported with the next line that passes ("(+N suppressed)").
// Thread-safe.
class RateLimitedLog {
 public:
  RateLimitedLog(LogLevel level, const char* component, int64_t interval_us,
                 Clock& clock)
      : level_(level), component_(component), interval_us_(interval_us),
        clock_(clock) {}
  // Returns true if the line was written.
  bool Log(const std::string& message);

 private:
  LogLevel level_;
  const char* component_;
  int64_t interval_us_;
  Clock& clock_;
  std::mutex mu_;
  int64_t last_us_ = INT64_MIN / 2;
  uint64_t suppressed_ = 0;
};

}  // namespace sluice
