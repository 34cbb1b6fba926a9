#include "drivers/modbus/modbus.h"

#include <algorithm>

#include "drivers/param_choice.h"

namespace sluice {

ModbusDriver::ModbusDriver(std::shared_ptr<ModbusLink> link, ModbusPoint point, int64_t timeout_us)
    : link_(std::move(link)), point_(point), response_timeout_us_(timeout_us) {}

StatusOr<double> ModbusDriver::Sample(int64_t /*wall_us*/) {
  bool bits = point_.table == ModbusTable::kCoil || point_.table == ModbusTable::kDiscrete;
  int count = bits ? 1 : ModbusRegisterCount(point_.format.type);
  StatusOr<std::vector<uint16_t>> regs =
      link_->Read(point_.unit, point_.table, point_.address, count, response_timeout_us_);
  if (!regs.ok()) return regs.status();
  if (bits) return (*regs)[0] != 0 ? 1.0 : 0.0;
  return DecodeModbusRegisters(regs->data(), point_.format);
}

namespace {

// The endpoint from `url`/`device` plus the separate serial params.
StatusOr<ModbusEndpoint> EndpointFromParams(Params& params) {
  StatusOr<std::string> key = ParamOneOfKeys(params, {"url", "device"});
  if (!key.ok()) return key.status();
  if (key->empty()) {
    return params.SensorError("param \"url\" (or \"device\") is required for driver \"modbus\"");
  }
  StatusOr<std::string> url = params.String(*key, "");
  if (!url.ok()) return url.status();
  std::vector<std::string> in_query;
  StatusOr<ModbusEndpoint> ep = ParseModbusUrl(*url, &in_query);
  if (!ep.ok()) return params.ErrorAt(*key, ep.status().message());
  for (const char* serial : {"baud", "parity", "data_bits", "stop_bits"}) {
    if (!params.Has(serial)) continue;
    std::string value;
    if (std::string(serial) == "parity") {
      StatusOr<std::string> s = params.String(serial, "");
      if (!s.ok()) return s.status();
      value = *s;
    } else {
      StatusOr<int64_t> n = params.Integer(serial, 0);
      if (!n.ok()) return n.status();
      value = std::to_string(*n);
    }
    if (!ep->rtu) return params.ErrorAt(serial, "applies to RTU devices only");
    if (std::find(in_query.begin(), in_query.end(), serial) != in_query.end()) {
      return params.ErrorAt(serial, "is already given in \"" + *key + "\"");
    }
    Status st = SetModbusSerialSetting(&*ep, serial, value);
    if (!st.ok()) return params.ErrorAt(serial, "invalid: " + st.message());
  }
  return ep;
}

}  // namespace

StatusOr<std::unique_ptr<Driver>> CreateModbusDriver(const SensorSpec& spec, Params& params,
                                                     DriverContext& ctx) {
  StatusOr<ModbusEndpoint> ep = EndpointFromParams(params);
  if (!ep.ok()) return ep.status();

  ModbusPoint point;
  StatusOr<int64_t> unit = ParamIntRange(params, "unit", 1, 0, 255);
  if (!unit.ok()) return unit.status();
  point.unit = static_cast<int>(*unit);
  if (ep->rtu && (point.unit < 1 || point.unit > 247)) {
    // 0 is broadcast (never answered) and 248-255 are reserved on a serial line.
    return params.ErrorAt("unit", "must be between 1 and 247 on an RTU bus (got " +
                                      std::to_string(point.unit) + ")");
  }
  if (!params.Has("register")) {
    return params.SensorError("param \"register\" is required for driver \"modbus\"");
  }
  StatusOr<int64_t> reg = ParamIntRange(params, "register", 0, 0, 65535);
  if (!reg.ok()) return reg.status();
  point.address = static_cast<int>(*reg);

  StatusOr<std::string> table_key = ParamOneOfKeys(params, {"kind", "table", "function"});
  if (!table_key.ok()) return table_key.status();
  if (!table_key->empty()) {
    StatusOr<int> t = ParamChoice(params, *table_key, {"holding", "input", "coil", "discrete"}, 0);
    if (!t.ok()) return t.status();
    point.table = static_cast<ModbusTable>(*t);
  }
  bool bits = point.table == ModbusTable::kCoil || point.table == ModbusTable::kDiscrete;
  for (const char* reg_only : {"type", "word_order", "byte_order"}) {
    if (bits && params.Has(reg_only)) {
      return params.ErrorAt(reg_only, "applies to registers only (this sensor reads a " +
                                          std::string(ModbusTableName(point.table)) + ")");
    }
  }
  StatusOr<int> type =
      ParamChoice(params, "type", {"int16", "uint16", "int32", "uint32", "float32"}, 1);
  if (!type.ok()) return type.status();
  point.format.type = static_cast<ModbusType>(*type);
  StatusOr<int> words = ParamChoice(params, "word_order", {"big", "little"}, 0);
  if (!words.ok()) return words.status();
  if (params.Has("word_order") && ModbusRegisterCount(point.format.type) == 1) {
    return params.ErrorAt("word_order", "applies to 32-bit types only (int32, uint32, float32)");
  }
  point.format.word_order = static_cast<WordOrder>(*words);
  StatusOr<int> bytes = ParamChoice(params, "byte_order", {"big", "little"}, 0);
  if (!bytes.ok()) return bytes.status();
  point.format.byte_order = static_cast<WordOrder>(*bytes);
  if (!bits && point.address + ModbusRegisterCount(point.format.type) - 1 > 65535) {
    return params.ErrorAt("register", "leaves no room for the second register of a 32-bit type");
  }

  ModbusLinkOptions options;
  StatusOr<int64_t> rmin = params.Duration("reconnect_min", options.reconnect_min_us);
  if (!rmin.ok()) return rmin.status();
  StatusOr<int64_t> rmax = params.Duration("reconnect_max", options.reconnect_max_us);
  if (!rmax.ok()) return rmax.status();
  if (*rmin <= 0) return params.ErrorAt("reconnect_min", "must be greater than 0");
  if (*rmax < *rmin) return params.ErrorAt("reconnect_max", "must be >= reconnect_min");
  options.reconnect_min_us = *rmin;
  options.reconnect_max_us = *rmax;

  StatusOr<std::shared_ptr<ModbusLink>> link =
      AcquireModbusLink(ctx.devices, *ep, options, ctx.clock, spec.name);
  if (!link.ok()) {
    return params.ErrorAt(params.Has("url") ? "url" : "device", link.status().message());
  }
  int64_t budget =
      spec.timeout_us > 0 ? spec.timeout_us : std::min<int64_t>(spec.interval_us, 10000000);
  return std::unique_ptr<Driver>(
      new ModbusDriver(std::move(*link), point, std::max<int64_t>(budget / 2, 1000)));
}

}  // namespace sluice
