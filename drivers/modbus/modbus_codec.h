// Decoding Modbus registers into numbers. Pure functions; thread-safe.
//
// A register is 16 bits. `byte_order` says how each register's two bytes
// are stored: big (the Modbus standard: high byte first) or little
// (swapped). `word_order` says which register of a 32-bit value comes
// first: big (high word first, "ABCD") or little (low word first, "CDAB").
// float32 is IEEE 754 single precision.
#pragma once

#include <cstdint>

namespace sluice {

enum class ModbusTable { kHolding, kInput, kCoil, kDiscrete };
enum class ModbusType { kInt16, kUint16, kInt32, kUint32, kFloat32 };
enum class WordOrder { kBig, kLittle };

struct ModbusFormat {
  ModbusType type = ModbusType::kUint16;
  WordOrder word_order = WordOrder::kBig;
  WordOrder byte_order = WordOrder::kBig;
};

// Registers a value of `type` occupies (1 or 2).
int ModbusRegisterCount(ModbusType type);

// The value in regs[0..ModbusRegisterCount(f.type)).
double DecodeModbusRegisters(const uint16_t* regs, const ModbusFormat& f);

// The inverse, for servers and tests: `value` (already in range for the
// type) stored into regs[0..ModbusRegisterCount(f.type)).
void EncodeModbusRegisters(double value, const ModbusFormat& f, uint16_t* regs);

const char* ModbusTableName(ModbusTable table);

}  // namespace sluice
