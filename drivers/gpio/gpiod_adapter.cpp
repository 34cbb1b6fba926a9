// libgpiod 1.6 (v1 API) behind the GpioChip seam.
#include <gpiod.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "drivers/gpio/gpio_chip.h"

namespace sluice {
namespace {

std::string Errno(int err) { return std::strerror(err); }

class GpiodLine final : public GpioLine {
 public:
  GpiodLine(gpiod_line* line, std::string what, int wake_fd)
      : line_(line), what_(std::move(what)), wake_fd_(wake_fd) {}
  ~GpiodLine() override {
    gpiod_line_release(line_);
    close(wake_fd_);
  }

  StatusOr<int> Value() override {
    int v = gpiod_line_get_value(line_);
    if (v < 0) return IoError("gpio " + what_ + ": reading the value: " + Errno(errno));
    return v;
  }

  Status WaitEvents(int64_t timeout_us, std::vector<GpioEvent>* out) override {
    int fd = gpiod_line_event_get_fd(line_);
    if (fd < 0) return IoError("gpio " + what_ + ": not requested for events");
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = poll(fds, 2, static_cast<int>((timeout_us + 999) / 1000));
    if (n < 0) {
      if (errno == EINTR) return Status::Ok();
      return IoError("gpio " + what_ + ": poll: " + Errno(errno));
    }
    if (fds[1].revents & POLLIN) {
      uint64_t drain;
      (void)!read(wake_fd_, &drain, sizeof drain);
    }
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      return IoError("gpio " + what_ + ": the line went away");
    }
    if ((fds[0].revents & POLLIN) == 0) return Status::Ok();
    gpiod_line_event events[16];
    int got = gpiod_line_event_read_multiple(line_, events, 16);
    if (got < 0) return IoError("gpio " + what_ + ": reading events: " + Errno(errno));
    for (int i = 0; i < got; ++i) {
      GpioEvent e;
      e.rising = events[i].event_type == GPIOD_LINE_EVENT_RISING_EDGE;
      e.ts_ns = int64_t{events[i].ts.tv_sec} * 1000000000 + events[i].ts.tv_nsec;
      out->push_back(e);
    }
    return Status::Ok();
  }

  void Wake() override {
    uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }

 private:
  gpiod_line* line_;
  std::string what_;
  int wake_fd_;
};

class GpiodChip final : public GpioChip {
 public:
  GpiodChip(gpiod_chip* chip, std::string name) : chip_(chip), name_(std::move(name)) {}
  ~GpiodChip() override { gpiod_chip_close(chip_); }

  StatusOr<std::unique_ptr<GpioLine>> Request(const GpioLineRequest& r) override {
    gpiod_line* line = nullptr;
    std::string what;
    if (r.offset >= 0) {
      what = name_ + " line " + std::to_string(r.offset);
      unsigned n = gpiod_chip_num_lines(chip_);
      if (static_cast<unsigned>(r.offset) >= n) {
        return Status(StatusCode::kNotFound, "gpio " + name_ + " has " + std::to_string(n) +
                                                 " lines (0-" + std::to_string(n - 1) +
                                                 "); no line " + std::to_string(r.offset));
      }
      line = gpiod_chip_get_line(chip_, static_cast<unsigned>(r.offset));
    } else {
      what = name_ + " line \"" + r.name + "\"";
      line = gpiod_chip_find_line(chip_, r.name.c_str());
      if (line == nullptr && errno == ENOENT) {
        return Status(StatusCode::kNotFound,
                      "gpio " + name_ + " has no line named \"" + r.name + "\"");
      }
    }
    if (line == nullptr) return IoError("gpio " + what + ": " + Errno(errno));
    int flags = r.active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
    if (r.bias == GpioBias::kDisable) flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_DISABLE;
    if (r.bias == GpioBias::kPullUp) flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_UP;
    if (r.bias == GpioBias::kPullDown) flags |= GPIOD_LINE_REQUEST_FLAG_BIAS_PULL_DOWN;
    const char* c = r.consumer.c_str();
    int rc;
    switch (r.edge) {
      case GpioEdge::kNone:
        rc = gpiod_line_request_input_flags(line, c, flags);
        break;
      case GpioEdge::kRising:
        rc = gpiod_line_request_rising_edge_events_flags(line, c, flags);
        break;
      case GpioEdge::kFalling:
        rc = gpiod_line_request_falling_edge_events_flags(line, c, flags);
        break;
      default:
        rc = gpiod_line_request_both_edges_events_flags(line, c, flags);
        break;
    }
    if (rc != 0) {
      int err = errno;
      std::string m = "gpio " + what + ": request failed: " + Errno(err);
      if (err == EBUSY) {
        const char* user = gpiod_line_consumer(line);
        m += std::string(" (in use by ") + (user != nullptr ? user : "another program") + ")";
      }
      if (err == EINVAL && r.bias != GpioBias::kAsIs) m += " (bias needs Linux 5.5 or later)";
      return IoError(m);
    }
    int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) {
      int err = errno;
      gpiod_line_release(line);
      return IoError("gpio " + what + ": eventfd: " + Errno(err));
    }
    return std::unique_ptr<GpioLine>(new GpiodLine(line, what, wake));
  }

  const std::string& name() const override { return name_; }

 private:
  gpiod_chip* chip_;
  std::string name_;
};

}  // namespace

StatusOr<std::unique_ptr<GpioChip>> OpenGpiodChip(const std::string& chip) {
  errno = 0;
  // A path opens directly, so its own errno (not the lookup's) is reported.
  gpiod_chip* c = !chip.empty() && chip[0] == '/' ? gpiod_chip_open(chip.c_str())
                                                  : gpiod_chip_open_lookup(chip.c_str());
  if (c == nullptr) {
    int err = errno != 0 ? errno : ENOENT;
    std::string m = "gpio: cannot open chip \"" + chip + "\": " + Errno(err);
    if (err == EACCES) m += " (add the user to the gpio group)";
    if (!chip.empty() && chip[0] == '/' && (err == ENOTTY || err == EINVAL || err == ENODEV)) {
      m += " (not a GPIO character device)";
    } else if (err == ENOENT || err == ENODEV) {
      m += " (no such GPIO chip; see `gpiodetect`)";
    }
    return Status(StatusCode::kNotFound, m);
  }
  return std::unique_ptr<GpioChip>(new GpiodChip(c, gpiod_chip_name(c)));
}

}  // namespace sluice
