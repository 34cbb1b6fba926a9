#include "drivers/modbus/modbus_tcp_frame.h"

#include <errno.h>
#include <modbus.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>

#include "common/clock.h"

namespace sluice {
namespace {

constexpr size_t kHeader = 7;        // tid, protocol, length, unit
constexpr size_t kMaxPdu = 253;      // MODBUS_MAX_PDU_LENGTH
constexpr uint8_t kExceptionBit = 0x80;

// Deadlines of real poll() waits: only real time drives them, so the
// process clock rather than an injected one.
int64_t NowUs() { return SystemClock::Get().NowMonotonicUs(); }

// Sends or receives exactly `len` bytes before `deadline_us`.
Status Exactly(int fd, uint8_t* buf, size_t len, bool send_it, int64_t deadline_us) {
  size_t done = 0;
  while (done < len) {
    int64_t left = deadline_us - NowUs();
    if (left <= 0) return Status(StatusCode::kTimeout, "Connection timed out");
    pollfd p{fd, static_cast<short>(send_it ? POLLOUT : POLLIN), 0};
    int n = poll(&p, 1, static_cast<int>((left + 999) / 1000));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return IoError(std::string("poll: ") + strerror(errno));
    if (n == 0) continue;
    ssize_t r = send_it ? send(fd, buf + done, len - done, MSG_NOSIGNAL)
                        : recv(fd, buf + done, len - done, 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (r < 0) return IoError(strerror(errno));
    if (r == 0) return IoError("connection closed by the device");
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

}  // namespace

int ModbusReadFunction(ModbusTable table) {
  switch (table) {
    case ModbusTable::kHolding:
      return 3;
    case ModbusTable::kInput:
      return 4;
    case ModbusTable::kCoil:
      return 1;
    case ModbusTable::kDiscrete:
      return 2;
  }
  return 3;
}

std::vector<uint8_t> BuildModbusTcpRead(uint16_t tid, int unit, ModbusTable table, int address,
                                        int count) {
  return {static_cast<uint8_t>(tid >> 8),     static_cast<uint8_t>(tid),
          0,
          0,
          0,
          6,
          static_cast<uint8_t>(unit),         static_cast<uint8_t>(ModbusReadFunction(table)),
          static_cast<uint8_t>(address >> 8), static_cast<uint8_t>(address),
          static_cast<uint8_t>(count >> 8),   static_cast<uint8_t>(count)};
}

StatusOr<size_t> ModbusTcpBodyLength(const uint8_t* h, uint16_t tid, int unit) {
  const unsigned got_tid = (h[0] << 8) | h[1];
  const unsigned proto = (h[2] << 8) | h[3];
  const unsigned length = (h[4] << 8) | h[5];
  if (got_tid != tid) {
    return IoError("response to transaction " + std::to_string(got_tid) + ", expected " +
                   std::to_string(tid));
  }
  if (proto != 0) return IoError("protocol id " + std::to_string(proto) + " in the MBAP header");
  if (length < 3 || length > kMaxPdu + 1) {
    return IoError("MBAP length " + std::to_string(length) +
                   " cannot frame a response (3 to 254)");
  }
  if (h[6] != static_cast<uint8_t>(unit)) {
    return IoError("response from unit " + std::to_string(h[6]) + ", expected " +
                   std::to_string(unit));
  }
  return static_cast<size_t>(length - 1);
}

ModbusFrameError ParseModbusReadPdu(const uint8_t* pdu, size_t len, ModbusTable table, int count,
                                    std::vector<uint16_t>* out, int* exception_code,
                                    std::string* why) {
  const int fn = ModbusReadFunction(table);
  if (len >= 1 && pdu[0] == (fn | kExceptionBit)) {
    if (len != 2) {
      *why = "exception response with MBAP length " + std::to_string(len + 1) + " (expected 3)";
      return ModbusFrameError::kFraming;
    }
    *exception_code = pdu[1];
    return ModbusFrameError::kException;
  }
  if (len < 2 || pdu[0] != fn) {
    *why = "response to function " + std::to_string(len >= 1 ? pdu[0] : 0) + ", expected " +
           std::to_string(fn);
    return ModbusFrameError::kFraming;
  }
  const bool bits = table == ModbusTable::kCoil || table == ModbusTable::kDiscrete;
  const size_t want = bits ? static_cast<size_t>((count + 7) / 8) : static_cast<size_t>(count) * 2;
  if (pdu[1] != want) {
    *why = "byte count " + std::to_string(pdu[1]) + ", expected " + std::to_string(want);
    return ModbusFrameError::kFraming;
  }
  if (len != 2 + want) {
    *why = "MBAP length " + std::to_string(len + 1) + " does not match the PDU (expected " +
           std::to_string(want + 3) + ")";
    return ModbusFrameError::kFraming;
  }
  out->assign(static_cast<size_t>(count), 0);
  for (int i = 0; i < count; ++i) {
    size_t k = static_cast<size_t>(i);
    (*out)[k] = bits ? (pdu[2 + k / 8] >> (k % 8)) & 1
                     : static_cast<uint16_t>((pdu[2 + 2 * k] << 8) | pdu[3 + 2 * k]);
  }
  return ModbusFrameError::kNone;
}

StatusOr<std::vector<uint16_t>> ModbusTcpRead(int fd, uint16_t tid, int unit, ModbusTable table,
                                              int address, int count, int64_t timeout_us,
                                              bool* in_step) {
  *in_step = false;
  const int64_t deadline = NowUs() + timeout_us;
  std::vector<uint8_t> req = BuildModbusTcpRead(tid, unit, table, address, count);
  SLUICE_RETURN_IF_ERROR(Exactly(fd, req.data(), req.size(), true, deadline));
  uint8_t header[kHeader];
  SLUICE_RETURN_IF_ERROR(Exactly(fd, header, kHeader, false, deadline));
  StatusOr<size_t> body = ModbusTcpBodyLength(header, tid, unit);
  if (!body.ok()) return body.status();
  uint8_t pdu[kMaxPdu];
  SLUICE_RETURN_IF_ERROR(Exactly(fd, pdu, *body, false, deadline));
  std::vector<uint16_t> out;
  int code = 0;
  std::string why;
  switch (ParseModbusReadPdu(pdu, *body, table, count, &out, &code, &why)) {
    case ModbusFrameError::kNone:
      *in_step = true;
      return out;
    case ModbusFrameError::kException:
      *in_step = true;
      return IoError(std::string(modbus_strerror(MODBUS_ENOBASE + code)) +
                     " (exception response)");
    case ModbusFrameError::kFraming:
      break;
  }
  return IoError(why);
}

}  // namespace sluice
