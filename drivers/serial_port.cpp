#include "drivers/serial_port.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "common/backoff.h"
#include "common/log.h"

namespace sluice {
namespace {

constexpr int64_t kReopenMinUs = 100 * 1000;
constexpr int64_t kReopenMaxUs = 5 * 1000000ll;

struct BaudEntry {
  int baud;
  speed_t speed;
};

constexpr BaudEntry kBauds[] = {
    {50, B50},           {75, B75},           {110, B110},         {134, B134},
    {150, B150},         {200, B200},         {300, B300},         {600, B600},
    {1200, B1200},       {1800, B1800},       {2400, B2400},       {4800, B4800},
    {9600, B9600},       {19200, B19200},     {38400, B38400},     {57600, B57600},
    {115200, B115200},   {230400, B230400},   {460800, B460800},   {500000, B500000},
    {576000, B576000},   {921600, B921600},   {1000000, B1000000}, {1152000, B1152000},
    {1500000, B1500000}, {2000000, B2000000}, {2500000, B2500000}, {3000000, B3000000},
    {3500000, B3500000}, {4000000, B4000000},
};

std::string Errno(const std::string& what, int err) { return what + ": " + std::strerror(err); }

}  // namespace

std::string SerialSettings::Describe() const {
  return std::to_string(baud) + " " + std::to_string(data_bits) + parity +
         std::to_string(stop_bits);
}

bool BaudToSpeed(int baud, speed_t* out) {
  for (const BaudEntry& e : kBauds) {
    if (e.baud == baud) {
      *out = e.speed;
      return true;
    }
  }
  return false;
}

void ApplySerialSettings(const SerialSettings& s, termios* t) {
  speed_t speed = B9600;
  BaudToSpeed(s.baud, &speed);
  cfmakeraw(t);
  t->c_cflag &= ~static_cast<tcflag_t>(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
  t->c_cflag |= CLOCAL | CREAD;
  switch (s.data_bits) {
    case 5:
      t->c_cflag |= CS5;
      break;
    case 6:
      t->c_cflag |= CS6;
      break;
    case 7:
      t->c_cflag |= CS7;
      break;
    default:
      t->c_cflag |= CS8;
      break;
  }
  if (s.parity != 'N') {
    t->c_cflag |= PARENB;
    if (s.parity == 'O') t->c_cflag |= PARODD;
    t->c_iflag |= INPCK | IGNPAR;  // bytes with parity errors are dropped
  }
  if (s.stop_bits == 2) t->c_cflag |= CSTOPB;
  t->c_cc[VMIN] = 1;
  t->c_cc[VTIME] = 0;
  cfsetispeed(t, speed);
  cfsetospeed(t, speed);
}

StatusOr<int> OpenSerialDevice(const SerialSettings& s) {
  speed_t speed;
  if (!BaudToSpeed(s.baud, &speed))
    return InvalidArgument("unsupported baud " + std::to_string(s.baud));
  int fd = open(s.device.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return IoError(Errno("open " + s.device, errno));
  termios t;
  if (tcgetattr(fd, &t) != 0) {
    int err = errno;
    close(fd);
    return IoError(Errno(s.device + " is not a terminal", err));
  }
  ApplySerialSettings(s, &t);
  termios check;
  if (tcsetattr(fd, TCSANOW, &t) != 0 || tcgetattr(fd, &check) != 0) {
    int err = errno;
    close(fd);
    return IoError(Errno(s.device + ": cannot apply " + s.Describe(), err));
  }
  if (cfgetispeed(&check) != speed) {
    close(fd);
    return IoError(s.device + ": the device refused " + s.Describe());
  }
  // Some ttys fix the character format (Linux ptys force 8 bits, no parity).
  if ((check.c_cflag & (CSIZE | PARENB)) != (t.c_cflag & (CSIZE | PARENB))) {
    LogWarn("serial", s.device + " does not take " + s.Describe() + "; reading it as it is");
  }
  tcflush(fd, TCIFLUSH);
  return fd;
}

StatusOr<std::shared_ptr<SerialPort>> SerialPort::For(SharedDevices& devices,
                                                      const SerialSettings& s,
                                                      const std::string& sensor) {
  return devices.Acquire<SerialPort>(
      s.device, [&] { return std::make_shared<SerialPort>(s, sensor); },
      [&](const SerialPort& port) -> Status {
        if (port.settings().SameLine(s)) return Status::Ok();
        return InvalidArgument("already used by sensor \"" + port.first_sensor() + "\" with " +
                               port.settings().Describe() + ", not " + s.Describe());
      });
}

SerialPort::SerialPort(SerialSettings settings, std::string first_sensor)
    : settings_(std::move(settings)), first_sensor_(std::move(first_sensor)) {}

SerialPort::~SerialPort() {
  stop_ = true;
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t w = write(wake_fd_, &one, sizeof one);
    (void)w;  // an eventfd write cannot fail here; stop_ is checked too
    thread_.join();
  }
  if (fd_ >= 0) close(fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void SerialPort::AddListener(Listener* l) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_.push_back(l);
}

void SerialPort::RemoveListener(Listener* l) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), l), listeners_.end());
}

void SerialPort::EnsureStarted() {
  std::call_once(start_once_, [this] {
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) {
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = Errno("eventfd", errno);
      cv_.notify_all();
      return;
    }
    thread_ = std::thread([this] { Run(); });
  });
}

SerialPortStats SerialPort::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  SerialPortStats s;
  s.connected = connected_;
  s.opens = opens_;
  s.lines = lines_;
  s.overlong = overlong_;
  s.disconnects = disconnects_;
  s.last_error = last_error_;
  return s;
}

bool SerialPort::Sleep(int64_t us) {
  pollfd p{wake_fd_, POLLIN, 0};
  int ms = static_cast<int>(std::max<int64_t>(1, us / 1000));
  poll(&p, 1, ms);
  return !stop_;
}

void SerialPort::SetDisconnected(const std::string& why) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  partial_.clear();
  std::lock_guard<std::mutex> lock(mu_);
  if (connected_) {
    ++disconnects_;
    LogWarn("serial", why + "; reopening");
  }
  connected_ = false;
  last_error_ = why;
  cv_.notify_all();
}

size_t SerialPort::Feed(const char* data, size_t n) {
  size_t delivered = 0;
  std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
  size_t pos = 0;
  while (pos < n) {
    const char* nl = static_cast<const char*>(std::memchr(data + pos, '\n', n - pos));
    size_t end = nl != nullptr ? static_cast<size_t>(nl - data) : n;
    if (!discard_line_) {
      if (partial_.size() + (end - pos) > kMaxSerialLine) {
        partial_.clear();
        discard_line_ = true;
        lock.lock();
        ++overlong_;
        lock.unlock();
      } else {
        partial_.append(data + pos, end - pos);
      }
    }
    if (nl == nullptr) break;
    pos = end + 1;
    if (discard_line_) {
      discard_line_ = false;
      partial_.clear();
      continue;
    }
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    if (!partial_.empty()) {
      lock.lock();
      ++lines_;
      ++delivered;
      for (Listener* l : listeners_) l->OnLine(partial_);
      cv_.notify_all();
      lock.unlock();
    }
    partial_.clear();
  }
  return delivered;
}

void SerialPort::Run() {
  Backoff backoff(kReopenMinUs, kReopenMaxUs);
  char buf[4096];
  while (!stop_) {
    if (fd_ < 0) {
      StatusOr<int> fd = OpenSerialDevice(settings_);
      if (!fd.ok()) {
        SetDisconnected(fd.status().message());
        if (!Sleep(backoff.NextDelayUs())) break;
        continue;
      }
      fd_ = *fd;
      partial_.clear();
      discard_line_ = true;
      std::lock_guard<std::mutex> lock(mu_);
      connected_ = true;
      last_error_.clear();
      ++opens_;
      cv_.notify_all();
      if (opens_ > 1) LogInfo("serial", settings_.device + " reopened");
    }
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {fd_, POLLIN, 0}};
    int rc = poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      SetDisconnected(Errno(settings_.device + ": poll", errno));
      if (!Sleep(kReopenMinUs)) break;
      continue;
    }
    if (stop_) break;
    if (fds[1].revents == 0) continue;
    // Read what is there first (data may precede a hang-up).
    bool lost = false;
    for (;;) {
      ssize_t got = read(fd_, buf, sizeof buf);
      if (got > 0) {
        // A device that opens and then hangs up at once keeps backing off.
        if (Feed(buf, static_cast<size_t>(got)) > 0) backoff.Reset();
        continue;
      }
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (fds[1].revents & (POLLHUP | POLLERR | POLLNVAL)) {
          SetDisconnected(settings_.device + ": device hung up");
          lost = true;
        }
        break;
      }
      SetDisconnected(got == 0 ? settings_.device + ": device hung up (end of file)"
                               : Errno(settings_.device + ": read", errno));
      lost = true;
      break;
    }
    if (lost && !Sleep(backoff.NextDelayUs())) break;
  }
}

}  // namespace sluice
