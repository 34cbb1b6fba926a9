// `driver = "serial"`: a line-oriented device on a tty (a meter, an Arduino,
// a USB-serial adapter) that prints readings as text lines.
//
// Params:
//   device    (required)  "/dev/ttyUSB0" (name it the same way in every sensor
//                         that shares it, e.g. always /dev/serial/by-id/...)
//   baud      = 9600      a standard rate, 50 .. 4000000
//   parity    = "none"    none | even | odd
//   data_bits = 8         5 .. 8
//   stop_bits = 1         1 | 2
//   prefix                only lines starting with this are considered
//   field                 CSV field index (0 = first) of the value, fields
//                         split by `separator` and trimmed; counted from the
//                         line's start (the prefix included)
//   separator = ","       with `field`
//   regex                 ECMAScript regex searched in the line; the first
//                         capture group (or the whole match) is the value;
//                         lines it does not match are ignored
//   Neither field nor regex: the whole line is the number.
//
// Sampling model: one reader thread per device (drivers/serial_port.h)
// reads continuously, so the kernel's buffer never fills with stale lines.
// Each sensor keeps the newest line that passes its filter and yields a
// number. Sample() returns that newest value received since the previous
// sample; if none has come yet it waits up to half the sensor's timeout
// (the common `timeout` param, default min(interval, 10 s)) for one.
// Errors: "no data from DEVICE ..." (nothing matched in time), the newest
// line's parse error if every matching line since the last sample was
// garbage, or why the device is not open ("open /dev/ttyUSB0: No such file
// or directory", "device hung up") while it is unplugged. The reader reopens
// it by itself, so the sensor recovers once the device is back.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>

#include "common/status.h"
#include "drivers/driver.h"
#include "drivers/serial_port.h"

namespace sluice {

// Factory registered as "serial".
StatusOr<std::unique_ptr<Driver>> CreateSerialDriver(const SensorSpec& spec, Params& params,
                                                     DriverContext& ctx);

// How a sensor finds its number in a line.
struct LineExtractor {
  std::string prefix;
  int field = -1;  // -1: not by field
  std::string separator = ",";
  std::optional<std::regex> regex;
  std::string regex_text;

  // kNotFound: the line is not for this sensor (prefix or regex mismatch);
  // kInvalidArgument: it is, but holds no valid number (the message says why).
  StatusOr<double> Extract(std::string_view line) const;
};

// Polled, blocking (Sample() waits for a line). Thread-safe.
class SerialDriver final : public Driver, private SerialPort::Listener {
 public:
  SerialDriver(std::shared_ptr<SerialPort> port, LineExtractor extractor, int64_t wait_us);
  ~SerialDriver() override;

  bool polled() const override { return true; }
  bool blocking() const override { return true; }
  StatusOr<double> Sample(int64_t wall_us) override;

  SerialPort& port() { return *port_; }
  int64_t wait_us() const { return wait_us_; }

 private:
  void OnLine(std::string_view line) override;  // port's lock held

  std::shared_ptr<SerialPort> port_;
  const LineExtractor extractor_;
  const int64_t wait_us_;
  // Guarded by the port's lock: what arrived since the last Sample().
  bool has_value_ = false;
  double value_ = 0;
  std::string error_;     // the newest matching line's error
  uint64_t ignored_ = 0;  // lines that did not match
};

}  // namespace sluice
