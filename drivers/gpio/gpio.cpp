#include "drivers/gpio/gpio.h"

#include <vector>

#include "drivers/param_choice.h"

namespace sluice {

GpioDriver::GpioDriver(GpioConfig config, GpioChipOpener open_chip, Clock& clock)
    : config_(std::move(config)), open_chip_(std::move(open_chip)), clock_(clock) {}

GpioDriver::~GpioDriver() { Close(); }

Status GpioDriver::Open() {
  StatusOr<std::unique_ptr<GpioChip>> chip = open_chip_(config_.chip);
  if (!chip.ok()) return chip.status();
  StatusOr<std::unique_ptr<GpioLine>> line = (*chip)->Request(config_.line);
  if (!line.ok()) return line.status();
  chip_ = std::move(*chip);
  line_ = std::move(*line);
  if (config_.mode != GpioMode::kLevel) {
    stop_ = false;
    failed_ = false;
    edges_ = 0;
    edges_total_ = 0;
    last_mono_us_ = clock_.NowMonotonicUs();
    watcher_ = std::thread([this] { Watch(); });
  }
  return Status::Ok();
}

void GpioDriver::Close() {
  if (watcher_.joinable()) {
    stop_ = true;
    line_->Wake();
    watcher_.join();
  }
  line_.reset();
  chip_.reset();
}

void GpioDriver::Watch() {
  std::vector<GpioEvent> events;
  while (!stop_) {
    events.clear();
    Status st = line_->WaitEvents(1000000, &events);
    if (!st.ok()) {
      std::lock_guard<std::mutex> lock(error_mu_);
      error_ = st.message();
      failed_ = true;
      return;
    }
    uint64_t n = 0;
    for (const GpioEvent& e : events) {
      GpioEdge want = config_.line.edge;
      if (want == GpioEdge::kBoth || (want == GpioEdge::kRising) == e.rising) ++n;
    }
    edges_ += n;
    edges_total_ += n;
  }
}

StatusOr<double> GpioDriver::Sample(int64_t /*wall_us*/) {
  if (line_ == nullptr) {
    Status st = Open();
    if (!st.ok()) return st;
    if (config_.mode != GpioMode::kLevel) {
      return Unavailable("gpio " + chip_->name() +
                         ": counting edges from now; the first count comes at the next sample");
    }
  }
  if (config_.mode == GpioMode::kLevel) {
    StatusOr<int> v = line_->Value();
    if (!v.ok()) {
      Close();
      return v.status();
    }
    return static_cast<double>(*v);
  }
  if (failed_) {
    std::string why;
    {
      std::lock_guard<std::mutex> lock(error_mu_);
      why = error_;
    }
    Close();
    return IoError(why);
  }
  int64_t now = clock_.NowMonotonicUs();
  uint64_t n = edges_.exchange(0);
  int64_t dt = now - last_mono_us_;
  last_mono_us_ = now;
  if (config_.mode == GpioMode::kCount) return static_cast<double>(n);
  if (dt <= 0) return Unavailable("gpio: no time has passed since the last sample");
  return static_cast<double>(n) * 1e6 / static_cast<double>(dt);
}

StatusOr<std::unique_ptr<Driver>> CreateGpioDriver(const SensorSpec& /*spec*/, Params& params,
                                                   DriverContext& ctx) {
  GpioConfig config;
  StatusOr<std::string> chip = params.String("chip", config.chip);
  if (!chip.ok()) return chip.status();
  if (chip->empty()) return params.ErrorAt("chip", "must not be empty");
  config.chip = *chip;
  if (!params.Has("line")) {
    return params.SensorError("param \"line\" is required for driver \"gpio\"");
  }
  StatusOr<int64_t> offset = params.Integer("line", -1);
  if (offset.ok()) {
    if (*offset < 0 || *offset > 65535) return params.ErrorAt("line", "must be an offset >= 0");
    config.line.offset = static_cast<int>(*offset);
  } else {
    StatusOr<std::string> name = params.String("line", "");
    if (!name.ok() || name->empty()) {
      return params.ErrorAt("line", "must be a line offset (17) or a line name (\"DOOR\")");
    }
    config.line.name = *name;
  }
  StatusOr<int> mode = ParamChoice(params, "mode", {"level", "count", "edges", "rate"}, 0);
  if (!mode.ok()) return mode.status();
  config.mode = *mode == 0 ? GpioMode::kLevel : *mode == 3 ? GpioMode::kRate : GpioMode::kCount;
  StatusOr<int> edge = ParamChoice(params, "edge", {"rising", "falling", "both"}, 0);
  if (!edge.ok()) return edge.status();
  if (config.mode == GpioMode::kLevel && params.Has("edge")) {
    return params.ErrorAt("edge", "applies to mode = \"count\" or \"rate\" only");
  }
  if (config.mode != GpioMode::kLevel) config.line.edge = static_cast<GpioEdge>(*edge + 1);
  StatusOr<bool> active_low = params.Bool("active_low", false);
  if (!active_low.ok()) return active_low.status();
  config.line.active_low = *active_low;
  StatusOr<int> bias = ParamChoice(params, "bias", {"as_is", "disable", "pull_up", "pull_down"}, 0);
  if (!bias.ok()) return bias.status();
  config.line.bias = static_cast<GpioBias>(*bias);
  config.line.consumer = "sluice:" + params.sensor();
  return std::unique_ptr<Driver>(new GpioDriver(config, OpenGpiodChip, ctx.clock));
}

}  // namespace sluice
