// Modbus TCP framing for reads, done by Sluice itself rather than libmodbus:
// libmodbus sizes a response by its function code and never checks the
// MBAP header's length field, so a response whose length is wrong (65535
// followed by stray bytes) is accepted and the stray bytes corrupt the
// next transaction. Here the length must match the PDU exactly; anything
// else is an error and the caller resets the connection.
//
// Pure functions plus one blocking transaction on a connected socket.
// Thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "drivers/modbus/modbus_codec.h"

namespace sluice {

// The Modbus function code that reads `table` (3, 4, 1, 2).
int ModbusReadFunction(ModbusTable table);

// A read request ADU: MBAP header (transaction `tid`, protocol 0, length 6,
// `unit`) + function, address, count.
std::vector<uint8_t> BuildModbusTcpRead(uint16_t tid, int unit, ModbusTable table, int address,
                                        int count);

// Outcome of checking a response.
enum class ModbusFrameError {
  kNone,       // a good response: `out` holds the values
  kException,  // a well-framed exception response: `exception_code` set
  kFraming,    // the stream is out of step (length, tid, protocol, unit, function)
};

// Checks the 7-byte MBAP header `h` of a response to request `tid` for
// `unit`: the number of bytes that follow it (length - 1), or a framing
// error when the length cannot hold a PDU of at most 253 bytes.
StatusOr<size_t> ModbusTcpBodyLength(const uint8_t* h, uint16_t tid, int unit);

// Checks the PDU `pdu` (`len` bytes after the header) of a response to a
// read of `count` items of `table`: the function must match (or be its
// exception), and the byte count and `len` must match `count` exactly.
// Returns the kind; on kNone fills `out` (bits as 0/1); on kException sets
// `*exception_code`; on kFraming `*why` says what was wrong.
ModbusFrameError ParseModbusReadPdu(const uint8_t* pdu, size_t len, ModbusTable table, int count,
                                    std::vector<uint16_t>* out, int* exception_code,
                                    std::string* why);

// One read transaction on the connected TCP socket `fd`: sends the request,
// reads exactly the header and the length it announces, checks both.
// Errors: kTimeout (no complete response within `timeout_us`), kIoError
// with "exception response" for a Modbus exception (the stream is in step),
// kIoError otherwise (the stream may be out of step: reset the
// connection). `*in_step` says whether the connection may be kept.
StatusOr<std::vector<uint16_t>> ModbusTcpRead(int fd, uint16_t tid, int unit, ModbusTable table,
                                              int address, int count, int64_t timeout_us,
                                              bool* in_step);

}  // namespace sluice
