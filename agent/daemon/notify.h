// systemd's sd_notify protocol, without libsystemd: datagrams to the
// socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract
// namespace). Without NOTIFY_SOCKET every call is a no-op.
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

class Notifier {
 public:
  // Reads NOTIFY_SOCKET and WATCHDOG_USEC (honouring WATCHDOG_PID).
  Notifier();
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  bool enabled() const { return fd_ >= 0; }
  // Sends `state` (e.g. "READY=1"). Returns false if sending failed.
  bool Send(const std::string& state);
  // Half of WATCHDOG_USEC, or 0 when the watchdog is off.
  int64_t watchdog_interval_us() const { return watchdog_interval_us_; }

 private:
  int fd_ = -1;
  std::string path_;
  int64_t watchdog_interval_us_ = 0;
};

}  // namespace sluice
