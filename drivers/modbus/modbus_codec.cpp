#include "drivers/modbus/modbus_codec.h"

#include <cstring>

namespace sluice {
namespace {

uint16_t Swap(uint16_t r) { return static_cast<uint16_t>((r << 8) | (r >> 8)); }

uint16_t Wire(uint16_t r, const ModbusFormat& f) {
  return f.byte_order == WordOrder::kLittle ? Swap(r) : r;
}

}  // namespace

int ModbusRegisterCount(ModbusType type) {
  return type == ModbusType::kInt16 || type == ModbusType::kUint16 ? 1 : 2;
}

double DecodeModbusRegisters(const uint16_t* regs, const ModbusFormat& f) {
  if (ModbusRegisterCount(f.type) == 1) {
    uint16_t r = Wire(regs[0], f);
    if (f.type == ModbusType::kInt16) return static_cast<int16_t>(r);
    return r;
  }
  uint16_t first = Wire(regs[0], f);
  uint16_t second = Wire(regs[1], f);
  uint32_t hi = f.word_order == WordOrder::kBig ? first : second;
  uint32_t lo = f.word_order == WordOrder::kBig ? second : first;
  uint32_t u = (hi << 16) | lo;
  switch (f.type) {
    case ModbusType::kInt32:
      return static_cast<int32_t>(u);
    case ModbusType::kFloat32: {
      float v;
      std::memcpy(&v, &u, sizeof v);
      return v;
    }
    default:
      return u;
  }
}

void EncodeModbusRegisters(double value, const ModbusFormat& f, uint16_t* regs) {
  if (ModbusRegisterCount(f.type) == 1) {
    uint16_t r = f.type == ModbusType::kInt16 ? static_cast<uint16_t>(static_cast<int16_t>(value))
                                              : static_cast<uint16_t>(value);
    regs[0] = Wire(r, f);
    return;
  }
  uint32_t u;
  if (f.type == ModbusType::kFloat32) {
    float v = static_cast<float>(value);
    std::memcpy(&u, &v, sizeof u);
  } else if (f.type == ModbusType::kInt32) {
    u = static_cast<uint32_t>(static_cast<int32_t>(value));
  } else {
    u = static_cast<uint32_t>(value);
  }
  uint16_t hi = static_cast<uint16_t>(u >> 16);
  uint16_t lo = static_cast<uint16_t>(u & 0xffff);
  regs[0] = Wire(f.word_order == WordOrder::kBig ? hi : lo, f);
  regs[1] = Wire(f.word_order == WordOrder::kBig ? lo : hi, f);
}

const char* ModbusTableName(ModbusTable table) {
  switch (table) {
    case ModbusTable::kHolding:
      return "holding register";
    case ModbusTable::kInput:
      return "input register";
    case ModbusTable::kCoil:
      return "coil";
    case ModbusTable::kDiscrete:
      return "discrete input";
  }
  return "?";
}

}  // namespace sluice
