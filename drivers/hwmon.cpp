#include "drivers/hwmon.h"

#include <cstring>

#include "drivers/sysfs_files.h"

namespace sluice {
namespace {

// hwmon ABI (Documentation/hwmon/sysfs-interface): milli-units for
// temperature, voltage, current and humidity; micro-units for power and energy.
double DivisorOf(const std::string& input) {
  auto starts = [&](const char* p) { return input.compare(0, std::strlen(p), p) == 0; };
  if (starts("temp") || starts("in") || starts("curr") || starts("humidity")) return 1000.0;
  if (starts("power") || starts("energy")) return 1000000.0;
  return 1.0;
}

// The input file for a label file "temp2_label": "temp2_input".
std::string InputOfLabelFile(const std::string& label_file) {
  return label_file.substr(0, label_file.size() - 6) + "_input";
}

}  // namespace

HwmonDriver::HwmonDriver(std::string root, std::string chip, std::string input, std::string label)
    : root_(std::move(root)),
      chip_(std::move(chip)),
      input_(std::move(input)),
      label_(std::move(label)) {
  ResolveAtStart();
}

Status HwmonDriver::Resolve() {
  location_.clear();
  StatusOr<std::vector<std::string>> chips = FindByNameFile(root_, chip_);
  if (!chips.ok()) return chips.status();
  if (chips->empty()) return IoError("no hwmon chip named \"" + chip_ + "\" under " + root_);
  for (const std::string& c : *chips) {
    const std::string base = root_ + "/" + c;
    for (const std::string& dir : {base, base + "/device"}) {
      std::string file = input_;
      if (file.empty()) {
        StatusOr<std::vector<std::string>> entries = ListDir(dir);
        if (!entries.ok()) continue;
        for (const std::string& e : *entries) {
          if (e.size() <= 6 || e.compare(e.size() - 6, 6, "_label") != 0) continue;
          StatusOr<std::string> text = ReadAttribute(dir + "/" + e);
          if (text.ok() && TrimSpace(*text) == label_) {
            file = InputOfLabelFile(e);
            break;
          }
        }
        if (file.empty()) continue;
      }
      if (!PathExists(dir + "/" + file)) continue;
      name_path_ = base + "/name";
      location_ = dir + "/" + file;
      divisor_ = DivisorOf(file);
      return Status::Ok();
    }
  }
  std::string what = input_.empty() ? "input labelled \"" + label_ + "\"" : input_;
  return IoError("hwmon chip \"" + chip_ + "\" (" + root_ + "/" + chips->front() + ") has no " +
                 what);
}

StatusOr<double> HwmonDriver::ReadResolved() {
  StatusOr<std::string> name = ReadAttribute(name_path_);
  if (!name.ok()) return name.status();
  if (TrimSpace(*name) != chip_) {
    return IoError(name_path_ + " now names \"" + TrimSpace(*name) + "\", not \"" + chip_ + "\"");
  }
  StatusOr<double> v = ReadNumber(location_);
  if (!v.ok()) return v.status();
  return *v / divisor_;
}

StatusOr<std::unique_ptr<Driver>> CreateHwmonDriver(const SensorSpec& /*spec*/, Params& params,
                                                    DriverContext& ctx) {
  StatusOr<std::string> chip = params.RequiredString("chip");
  if (!chip.ok()) return chip.status();
  if (chip->empty()) return params.ErrorAt("chip", "must not be empty");
  const bool has_input = params.Has("input"), has_label = params.Has("label");
  if (has_input == has_label) {
    return params.SensorError(
        "driver \"hwmon\" needs exactly one of params \"input\" "
        "(e.g. \"temp1_input\") and \"label\"");
  }
  std::string input, label;
  if (has_input) {
    StatusOr<std::string> v = EntryNameParam(params, "input");
    if (!v.ok()) return v.status();
    input = *v;
  } else {
    StatusOr<std::string> v = params.RequiredString("label");
    if (!v.ok()) return v.status();
    if (TrimSpace(*v).empty()) return params.ErrorAt("label", "must not be empty");
    label = TrimSpace(*v);
  }
  StatusOr<std::string> root = RootParam(params, ctx, "/class/hwmon");
  if (!root.ok()) return root.status();
  return std::unique_ptr<Driver>(new HwmonDriver(*root, *chip, input, label));
}

}  // namespace sluice
