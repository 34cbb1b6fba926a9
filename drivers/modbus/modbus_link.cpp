#include "drivers/modbus/modbus_link.h"

#include <modbus.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <map>

#include "common/redact_url.h"
#include "drivers/modbus/modbus_tcp_frame.h"

namespace sluice {
namespace {

bool ParseInt(const std::string& s, long lo, long hi, long* out) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  long v = std::strtol(s.c_str(), nullptr, 10);
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

// Rates termios (and so libmodbus) knows; libmodbus silently falls back to
// 9600 for any other.
constexpr long kBauds[] = {110,     300,     600,     1200,    2400,    4800,    9600,    19200,
                           38400,   57600,   115200,  230400,  460800,  500000,  576000,  921600,
                           1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000};

bool IsModbusException(int err) { return err >= EMBXILFUN && err <= EMBXGTAR; }

}  // namespace

Status SetModbusSerialSetting(ModbusEndpoint* ep, const std::string& key,
                              const std::string& value) {
  long v = 0;
  if (key == "baud") {
    if (!ParseInt(value, 1, 4000000, &v) ||
        std::find(std::begin(kBauds), std::end(kBauds), v) == std::end(kBauds)) {
      return InvalidArgument("baud must be a standard rate such as 9600 or 115200 (got " + value +
                             ")");
    }
    ep->baud = static_cast<int>(v);
  } else if (key == "parity") {
    if (value == "N" || value == "none")
      ep->parity = 'N';
    else if (value == "E" || value == "even")
      ep->parity = 'E';
    else if (value == "O" || value == "odd")
      ep->parity = 'O';
    else
      return InvalidArgument("parity must be none, even or odd (N, E, O; got " + value + ")");
  } else if (key == "data_bits") {
    if (!ParseInt(value, 5, 8, &v)) return InvalidArgument("data_bits must be 5 to 8");
    ep->data_bits = static_cast<int>(v);
  } else if (key == "stop_bits") {
    if (!ParseInt(value, 1, 2, &v)) return InvalidArgument("stop_bits must be 1 or 2");
    ep->stop_bits = static_cast<int>(v);
  } else {
    return InvalidArgument("unknown serial setting \"" + key +
                           "\" (known: baud, parity, data_bits, stop_bits)");
  }
  return Status::Ok();
}

std::string ModbusEndpoint::Key() const {
  if (rtu) return "rtu://" + device;
  return "tcp://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

std::string ModbusEndpoint::Describe() const {
  if (!rtu) return Key();
  return Key() + "?baud=" + std::to_string(baud) + "&parity=" + std::string(1, parity) +
         "&data_bits=" + std::to_string(data_bits) + "&stop_bits=" + std::to_string(stop_bits);
}

StatusOr<ModbusEndpoint> ParseModbusUrl(const std::string& url,
                                        std::vector<std::string>* query_keys) {
  ModbusEndpoint ep;
  const std::string kTcp = "tcp://", kRtu = "rtu://";
  if (url.compare(0, kTcp.size(), kTcp) == 0) {
    std::string rest = url.substr(kTcp.size());
    std::string port;
    if (!rest.empty() && rest[0] == '[') {  // [v6]:port
      size_t close = rest.find(']');
      if (close == std::string::npos) return InvalidArgument("missing ']' in " + RedactUrl(url));
      ep.host = rest.substr(1, close - 1);
      std::string tail = rest.substr(close + 1);
      if (!tail.empty()) {
        if (tail[0] != ':') return InvalidArgument("expected :PORT after ] in " + RedactUrl(url));
        port = tail.substr(1);
      }
    } else {
      size_t colon = rest.rfind(':');
      ep.host = rest.substr(0, colon);
      if (colon != std::string::npos) port = rest.substr(colon + 1);
    }
    if (ep.host.empty()) return InvalidArgument("missing host in " + RedactUrl(url));
    if (ep.host.find_first_of("/?@ ") != std::string::npos) {
      return InvalidArgument("bad host in " + RedactUrl(url) + " (no path, no user@)");
    }
    if (!port.empty() || rest.back() == ':') {
      long p = 0;
      if (!ParseInt(port, 1, 65535, &p)) return InvalidArgument("bad port in " + RedactUrl(url));
      ep.port = static_cast<int>(p);
    }
    return ep;
  }
  std::string rest;
  if (url.compare(0, kRtu.size(), kRtu) == 0) {
    rest = url.substr(kRtu.size());
  } else if (!url.empty() && url[0] == '/') {
    rest = url;
  } else {
    return InvalidArgument(
        "must be tcp://HOST:PORT, rtu:///dev/DEVICE?baud=...&parity=... or "
        "a device path such as /dev/ttyUSB0 (got \"" +
        RedactUrl(url) + "\")");
  }
  ep.rtu = true;
  size_t q = rest.find('?');
  ep.device = rest.substr(0, q);
  if (ep.device.empty() || ep.device[0] != '/') {
    return InvalidArgument("the RTU device must be an absolute path (got \"" + ep.device + "\")");
  }
  if (q == std::string::npos) return ep;
  std::string query = rest.substr(q + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    size_t eq = kv.find('=');
    if (eq == std::string::npos) return InvalidArgument("expected key=value, got \"" + kv + "\"");
    std::string key = kv.substr(0, eq);
    SLUICE_RETURN_IF_ERROR(SetModbusSerialSetting(&ep, key, kv.substr(eq + 1)));
    if (query_keys != nullptr) query_keys->push_back(key);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return ep;
}

ModbusLink::ModbusLink(ModbusEndpoint endpoint, ModbusLinkOptions options, Clock& clock,
                       std::string owner)
    : endpoint_(std::move(endpoint)),
      options_(options),
      clock_(clock),
      owner_(std::move(owner)),
      backoff_(options.reconnect_min_us, options.reconnect_max_us) {}

ModbusLink::~ModbusLink() {
  std::lock_guard<std::mutex> lock(mu_);
  CloseLocked();
}

uint64_t ModbusLink::connects() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connects_;
}

void ModbusLink::CloseLocked() {
  if (ctx_ == nullptr) return;
  if (connected_) modbus_close(ctx_);
  modbus_free(ctx_);
  ctx_ = nullptr;
  connected_ = false;
}

static void SetTimeout(modbus_t* ctx, int64_t timeout_us) {
  timeout_us = std::max<int64_t>(timeout_us, 1000);
  modbus_set_response_timeout(ctx, static_cast<uint32_t>(timeout_us / 1000000),
                              static_cast<uint32_t>(timeout_us % 1000000));
}

Status ModbusLink::ConnectLocked(int64_t timeout_us) {
  const ModbusEndpoint& ep = endpoint_;
  if (ep.rtu) {
    ctx_ = modbus_new_rtu(ep.device.c_str(), ep.baud, ep.parity, ep.data_bits, ep.stop_bits);
  } else {
    std::string port = std::to_string(ep.port);
    ctx_ = modbus_new_tcp_pi(ep.host.c_str(), port.c_str());
  }
  if (ctx_ == nullptr) {
    return InvalidArgument("modbus " + ep.Describe() + ": " + modbus_strerror(errno));
  }
  SetTimeout(ctx_, timeout_us);
  if (modbus_connect(ctx_) != 0) {
    int err = errno;
    CloseLocked();
    return Unavailable("modbus " + ep.Describe() + ": cannot connect: " + modbus_strerror(err));
  }
  connected_ = true;
  ++connects_;
  tid_ = 0;
  return Status::Ok();
}

StatusOr<std::vector<uint16_t>> ModbusLink::Read(int unit, ModbusTable table, int address,
                                                 int count, int64_t timeout_us) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ctx_ == nullptr) {
    int64_t now = clock_.NowMonotonicUs();
    if (now < next_attempt_us_) {
      return Unavailable("modbus " + endpoint_.Describe() + ": not connected (" + last_error_ +
                         "); next attempt in " +
                         std::to_string((next_attempt_us_ - now + 999) / 1000) + " ms");
    }
    Status st = ConnectLocked(timeout_us);
    if (!st.ok()) {
      last_error_ = st.message();
      next_attempt_us_ = now + backoff_.NextDelayUs();
      return st;
    }
    backoff_.Reset();
  }
  SetTimeout(ctx_, timeout_us);
  if (modbus_set_slave(ctx_, unit) != 0) {
    return InvalidArgument("modbus " + endpoint_.Describe() + ": bad unit " + std::to_string(unit) +
                           ": " + modbus_strerror(errno));
  }
  const std::string what_read = "modbus " + endpoint_.Describe() + " unit " +
                                std::to_string(unit) + ": reading " + ModbusTableName(table) +
                                " " + std::to_string(address) +
                                (count > 1 ? " (" + std::to_string(count) + ")" : "");
  if (!endpoint_.rtu) {
    // Our own framing (modbus_tcp_frame.h): the MBAP length must match.
    bool in_step = false;
    StatusOr<std::vector<uint16_t>> r =
        ModbusTcpRead(modbus_get_socket(ctx_), ++tid_, unit, table, address, count, timeout_us,
                      &in_step);
    if (r.ok()) return r;
    std::string what = what_read + ": " + r.status().message();
    if (in_step) return IoError(what);  // an exception response
    // Out of step (or timed out): drop the connection and whatever is
    // still in it; the next Read() reconnects.
    CloseLocked();
    last_error_ = what;
    return Status(r.status().code(), what);
  }
  std::vector<uint16_t> out(static_cast<size_t>(count));
  int rc;
  if (table == ModbusTable::kHolding) {
    rc = modbus_read_registers(ctx_, address, count, out.data());
  } else if (table == ModbusTable::kInput) {
    rc = modbus_read_input_registers(ctx_, address, count, out.data());
  } else {
    std::vector<uint8_t> bits(static_cast<size_t>(count));
    rc = table == ModbusTable::kCoil ? modbus_read_bits(ctx_, address, count, bits.data())
                                     : modbus_read_input_bits(ctx_, address, count, bits.data());
    for (int i = 0; i < count; ++i) out[static_cast<size_t>(i)] = bits[static_cast<size_t>(i)];
  }
  if (rc == count) return out;
  int err = rc < 0 ? errno : EMBBADDATA;
  std::string what = what_read + ": " + modbus_strerror(err);
  if (IsModbusException(err)) return IoError(what + " (exception response)");
  if (endpoint_.rtu && err == ETIMEDOUT) {
    // A silent or absent unit on a shared bus: the port itself is fine.
    modbus_flush(ctx_);
    return Status(StatusCode::kTimeout, what);
  }
  // Anything else may have left the stream out of step: start afresh.
  CloseLocked();
  last_error_ = what;
  return err == ETIMEDOUT ? Status(StatusCode::kTimeout, what) : IoError(what);
}

StatusOr<std::shared_ptr<ModbusLink>> AcquireModbusLink(SharedDevices& devices,
                                                        const ModbusEndpoint& endpoint,
                                                        const ModbusLinkOptions& options,
                                                        Clock& clock, const std::string& sensor) {
  const std::string key = endpoint.Key();
  return devices.Acquire<ModbusLink>(
      key, [&] { return std::make_shared<ModbusLink>(endpoint, options, clock, sensor); },
      [&](const ModbusLink& link) -> Status {
        if (link.endpoint().Describe() != endpoint.Describe()) {
          return InvalidArgument("device " + key + " is already used by sensor \"" +
                                 link.owner() + "\" as " + link.endpoint().Describe() +
                                 "; every sensor of one device must give the same settings");
        }
        if (!(link.options() == options)) {
          return InvalidArgument("device " + key + " is already used by sensor \"" +
                                 link.owner() + "\" with other reconnect_min/reconnect_max values");
        }
        return Status::Ok();
      });
}

}  // namespace sluice
