#include "drivers/iio.h"

#include <cctype>

#include "drivers/sysfs_files.h"

namespace sluice {
namespace {

// "voltage0" -> "voltage", "accel_x" -> "accel".
std::string TypeOf(const std::string& channel) {
  size_t n = 0;
  while (n < channel.size() && std::isalpha(static_cast<unsigned char>(channel[n]))) ++n;
  return channel.substr(0, n);
}

// The first of `dir`/in_<a>_<what>, `dir`/in_<b>_<what> that exists, or "".
std::string FirstExisting(const std::string& dir, const std::string& a, const std::string& b,
                          const std::string& what) {
  for (const std::string& c : {a, b}) {
    if (c.empty()) continue;
    std::string p = dir + "/in_" + c + "_" + what;
    if (PathExists(p)) return p;
  }
  return "";
}

}  // namespace

IioDriver::IioDriver(std::string root, std::string device, std::string channel)
    : root_(std::move(root)), device_(std::move(device)), channel_(std::move(channel)) {
  ResolveAtStart();
}

Status IioDriver::Resolve() {
  location_.clear();
  StatusOr<std::vector<std::string>> devices = FindByNameFile(root_, device_);
  if (!devices.ok()) return devices.status();
  if (devices->empty()) {
    return IoError("no IIO device named \"" + device_ + "\" under " + root_);
  }
  const std::string type = TypeOf(channel_);
  for (const std::string& d : *devices) {
    const std::string dir = root_ + "/" + d;
    input_path_ = FirstExisting(dir, channel_, "", "input");
    raw_path_ = FirstExisting(dir, channel_, "", "raw");
    if (input_path_.empty() && raw_path_.empty()) continue;
    offset_path_ = FirstExisting(dir, channel_, type, "offset");
    scale_path_ = FirstExisting(dir, channel_, type, "scale");
    location_ = dir;
    return Status::Ok();
  }
  return IoError("IIO device \"" + device_ + "\" (" + root_ + "/" + devices->front() +
                 ") has neither in_" + channel_ + "_input nor in_" + channel_ + "_raw");
}

StatusOr<double> IioDriver::ReadResolved() {
  StatusOr<std::string> name = ReadAttribute(location_ + "/name");
  if (!name.ok()) return name.status();
  if (TrimSpace(*name) != device_) {
    return IoError(location_ + "/name now names \"" + TrimSpace(*name) + "\", not \"" + device_ +
                   "\"");
  }
  if (!input_path_.empty()) return ReadNumber(input_path_);
  StatusOr<double> raw = ReadNumber(raw_path_);
  if (!raw.ok()) return raw.status();
  double offset = 0, scale = 1;
  if (!offset_path_.empty()) {
    StatusOr<double> v = ReadNumber(offset_path_);
    if (!v.ok()) return v.status();
    offset = *v;
  }
  if (!scale_path_.empty()) {
    StatusOr<double> v = ReadNumber(scale_path_);
    if (!v.ok()) return v.status();
    // A zero scale turns every raw value into 0: a misconfigured or
    // unprobed channel, never a measurement.
    if (*v == 0) return IoError(scale_path_ + ": scale is 0 (every reading would be 0)");
    scale = *v;
  }
  return (*raw + offset) * scale;
}

StatusOr<std::unique_ptr<Driver>> CreateIioDriver(const SensorSpec& /*spec*/, Params& params,
                                                  DriverContext& ctx) {
  StatusOr<std::string> device = params.RequiredString("device");
  if (!device.ok()) return device.status();
  if (device->empty()) return params.ErrorAt("device", "must not be empty");
  StatusOr<std::string> channel = params.RequiredString("channel");
  if (!channel.ok()) return channel.status();
  bool valid = !channel->empty() && std::isalpha(static_cast<unsigned char>((*channel)[0]));
  for (char c : *channel) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') valid = false;
  }
  if (!valid) {
    return params.ErrorAt(
        "channel",
        "must be an IIO channel like \"voltage0\" or \"temp\", got \"" + *channel + "\"");
  }
  StatusOr<std::string> root = RootParam(params, ctx, "/bus/iio/devices");
  if (!root.ok()) return root.status();
  return std::unique_ptr<Driver>(new IioDriver(*root, *device, *channel));
}

}  // namespace sluice
