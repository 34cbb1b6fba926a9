#include "drivers/serial.h"

#include <algorithm>
#include <utility>

#include "common/units.h"
#include "drivers/param_choice.h"
#include "drivers/value_text.h"

namespace sluice {
namespace {

constexpr int64_t kDefaultTimeoutUs = 10 * 1000000ll;

Status LineError(std::string_view line, const std::string& why) {
  return InvalidArgument("line \"" + Snippet(line) + "\": " + why);
}

}  // namespace

StatusOr<double> LineExtractor::Extract(std::string_view line) const {
  if (line.substr(0, prefix.size()) != prefix) return Status(StatusCode::kNotFound, "");
  std::string_view text = line;
  if (regex.has_value()) {
    std::cmatch m;
    try {
      if (!std::regex_search(line.data(), line.data() + line.size(), m, *regex)) {
        return Status(StatusCode::kNotFound, "");
      }
    } catch (const std::regex_error& e) {
      return LineError(line, std::string("regex failed: ") + e.what());
    }
    const size_t group = m.size() > 1 ? 1 : 0;
    if (!m[group].matched) return LineError(line, "the regex group matched nothing");
    text = std::string_view(m[group].first, static_cast<size_t>(m[group].length()));
  } else if (field >= 0) {
    size_t start = 0;
    int index = 0;
    for (;;) {
      size_t sep = line.find(separator, start);
      if (index == field) {
        text = line.substr(start, sep == std::string_view::npos ? sep : sep - start);
        break;
      }
      if (sep == std::string_view::npos) {
        return LineError(line, "has " + std::to_string(index + 1) + " fields, no field " +
                                   std::to_string(field));
      }
      start = sep + separator.size();
      ++index;
    }
  }
  StatusOr<double> v = ParsePlainNumber(text);
  if (!v.ok()) return LineError(line, v.status().message());
  return v;
}

SerialDriver::SerialDriver(std::shared_ptr<SerialPort> port, LineExtractor extractor,
                           int64_t wait_us)
    : port_(std::move(port)), extractor_(std::move(extractor)), wait_us_(wait_us) {
  port_->AddListener(this);
}

SerialDriver::~SerialDriver() { port_->RemoveListener(this); }

void SerialDriver::OnLine(std::string_view line) {
  StatusOr<double> v = extractor_.Extract(line);
  if (v.ok()) {
    has_value_ = true;
    value_ = *v;
    error_.clear();
  } else if (v.status().code() == StatusCode::kNotFound) {
    ++ignored_;
  } else if (!has_value_) {
    error_ = v.status().message();
  }
}

StatusOr<double> SerialDriver::Sample(int64_t /*wall_us*/) {
  port_->EnsureStarted();
  double value = 0;
  std::string error;
  uint64_t ignored = 0;
  const bool done = port_->WaitUntil(
      [&] {
        ignored = ignored_;
        if (has_value_) {
          value = value_;
        } else if (!error_.empty()) {
          error = error_;
        } else if (!port_->connected_locked() && port_->opened_once_locked()) {
          error = port_->last_error_locked();
          return true;  // keep counting ignored lines until it is back
        } else {
          return false;
        }
        has_value_ = false;
        error_.clear();
        ignored_ = 0;
        return true;
      },
      wait_us_);
  if (done && error.empty()) return value;
  if (done) return InvalidArgument(error);
  port_->WaitUntil(
      [&] {
        ignored_ = 0;
        return true;
      },
      0);
  std::string what = "no data from " + port_->settings().device + " in " + FormatDuration(wait_us_);
  if (ignored > 0) what += " (" + std::to_string(ignored) + " lines did not match)";
  return Status(StatusCode::kUnavailable, what);
}

StatusOr<std::unique_ptr<Driver>> CreateSerialDriver(const SensorSpec& spec, Params& params,
                                                     DriverContext& ctx) {
  SerialSettings s;
  StatusOr<std::string> device = params.RequiredString("device");
  if (!device.ok()) return device.status();
  if (device->empty()) return params.ErrorAt("device", "must not be empty");
  s.device = *device;

  StatusOr<int64_t> baud = params.Integer("baud", 9600);
  if (!baud.ok()) return baud.status();
  speed_t speed;
  if (*baud <= 0 || *baud > 4000000 || !BaudToSpeed(static_cast<int>(*baud), &speed)) {
    return params.ErrorAt("baud",
                          "must be a standard rate (1200, 9600, 19200, 38400, 57600, "
                          "115200, ...), not " +
                              std::to_string(*baud));
  }
  s.baud = static_cast<int>(*baud);
  StatusOr<int> parity = ParamChoice(params, "parity", {"none", "even", "odd"}, 0);
  if (!parity.ok()) return parity.status();
  s.parity = "NEO"[*parity];
  StatusOr<int64_t> data_bits = ParamIntRange(params, "data_bits", 8, 5, 8);
  if (!data_bits.ok()) return data_bits.status();
  s.data_bits = static_cast<int>(*data_bits);
  StatusOr<int64_t> stop_bits = ParamIntRange(params, "stop_bits", 1, 1, 2);
  if (!stop_bits.ok()) return stop_bits.status();
  s.stop_bits = static_cast<int>(*stop_bits);

  LineExtractor x;
  StatusOr<std::string> prefix = params.String("prefix", "");
  if (!prefix.ok()) return prefix.status();
  x.prefix = *prefix;
  if (params.Has("field")) {
    StatusOr<int64_t> field = ParamIntRange(params, "field", 0, 0, 1000);  // 0: the first
    if (!field.ok()) return field.status();
    x.field = static_cast<int>(*field);
  }
  StatusOr<std::string> separator = params.String("separator", ",");
  if (!separator.ok()) return separator.status();
  if (separator->empty()) return params.ErrorAt("separator", "must not be empty");
  if (params.Has("separator") && !params.Has("field")) {
    return params.ErrorAt("separator", "needs param \"field\"");
  }
  x.separator = *separator;
  StatusOr<std::string> regex = params.String("regex", "");
  if (!regex.ok()) return regex.status();
  StatusOr<std::string> by = ParamOneOfKeys(params, {"field", "regex"});
  if (!by.ok()) return by.status();
  if (params.Has("regex")) {
    try {
      x.regex.emplace(*regex, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return params.ErrorAt("regex", std::string("is not a valid regex: ") + e.what());
    }
    x.regex_text = *regex;
  }

  StatusOr<std::shared_ptr<SerialPort>> port = SerialPort::For(ctx.devices, s, spec.name);
  if (!port.ok()) return params.ErrorAt("device", "is " + port.status().message());
  int64_t timeout = spec.timeout_us;
  if (timeout <= 0) timeout = std::min<int64_t>(spec.interval_us, kDefaultTimeoutUs);
  if (timeout <= 0) timeout = kDefaultTimeoutUs;
  return std::unique_ptr<Driver>(new SerialDriver(*port, std::move(x), timeout / 2));
}

}  // namespace sluice
