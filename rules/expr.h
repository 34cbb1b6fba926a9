// The rule expression language (CONTRACT.md "Rule files"): parsing into a
// compiled postfix program. Evaluation lives with the engine (engine.h),
// which binds the program's sensor/window references to live windows.
//
// Lexical rules
// - Numbers: 12, 0.5, .5, 1e3, 2.5E-3. A number followed directly by letters
//   is a duration (30s, 250ms) and is only valid as a window.
// - Names: a letter or '_' followed by any of [A-Za-z0-9._-]. A name runs as
//   long as such characters continue, so `boiler-temp` and `a-b` are single
//   sensor names: write spaces around '-' to subtract (`a - b`). A sensor
//   whose name starts with a digit or is a keyword is written in single
//   quotes: '1wire.temp', 'and'.
// - Keywords (lower case): and, or, not. Function names are only special
//   when followed by '('.
// - Operators: + - * /  < <= > >= == !=  ( ) ,
//
// Grammar and precedence (lowest first): or < and < not < comparisons
// (non-associative: `a < b < c` is an error) < + - < * / < unary minus.
// Binary operators of one level associate to the left.
//
// Values
// - A bare sensor name is the value of that sensor's newest reading (by
//   timestamp); no value before the first reading.
// - f(SENSOR, WINDOW), f in avg min max sum count last delta rate stddev
//   absent; WINDOW is `30s` (sliding), `tumbling(1m)` or `last(100)`.
//   absent() takes a sliding duration only and is a condition.
// - Numeric expressions may have "no value" (an empty window, a sensor that
//   never reported, x/0, an overflow). Arithmetic with no value gives no
//   value. A comparison involving no value is unknown; `not unknown` is
//   unknown, `unknown and false` is false, `unknown or true` is true
//   (Kleene logic). A condition holds only when it is true.
// - Types are checked at load time: and/or/not and the top level take
//   conditions (comparisons, absent()), arithmetic and comparisons take
//   numbers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice {
namespace rules {

enum class WindowKind : uint8_t { kSliding = 0, kTumbling = 1, kCount = 2 };

struct WindowSpec {
  WindowKind kind = WindowKind::kSliding;
  int64_t length = 0;  // microseconds (sliding, tumbling) or readings (count)

  bool operator==(const WindowSpec& o) const { return kind == o.kind && length == o.length; }
  bool operator!=(const WindowSpec& o) const { return !(*this == o); }
  bool operator<(const WindowSpec& o) const {
    return kind != o.kind ? kind < o.kind : length < o.length;
  }
  // "30s", "tumbling(1m)", "last(100)" (durations in their largest exact unit).
  std::string ToString() const;
};

// Largest count window, readings.
constexpr int64_t kMaxCountWindow = 1000000;

enum class Func : uint8_t {
  kAvg, kMin, kMax, kSum, kCount, kLast, kDelta, kRate, kStddev, kAbsent
};
const char* FuncName(Func f);

enum class Op : uint8_t {
  kConst,   // push `number`
  kLatest,  // push the newest value of refs[ref].sensor
  kWindow,  // push func over refs[ref]
  kAbsent,  // push absent(refs[ref].sensor, `number` microseconds)
  kNeg, kAdd, kSub, kMul, kDiv,
  kLt, kLe, kGt, kGe, kEq, kNe,
  kAnd, kOr, kNot,
};

struct Node {
  Op op = Op::kConst;
  Func func = Func::kAvg;
  uint32_t ref = 0;
  double number = 0;
  uint32_t offset = 0;  // byte offset of the node's token in the source
};

// What an expression reads: a sensor's window (windowed) or the sensor
// itself (its newest value, absent()).
struct Ref {
  std::string sensor;
  bool windowed = false;
  WindowSpec window;
  bool operator==(const Ref& o) const {
    return sensor == o.sensor && windowed == o.windowed && (!windowed || window == o.window);
  }
};

// A compiled condition.
struct Expr {
  std::string source;               // as written
  std::string canonical;            // tokens joined with normalized spacing
  std::vector<Node> program;        // postfix
  std::vector<Ref> refs;            // deduplicated
  // program[subject_begin, subject_end) computes {value}: the left side of
  // the first comparison, or else the first absent() (1 or 0).
  uint32_t subject_begin = 0;
  uint32_t subject_end = 0;
  uint32_t max_stack = 0;           // evaluation stack depth needed
  bool uses_absent = false;
};

struct ExprError {
  size_t offset = 0;  // byte offset into the source (== size() for "at end")
  std::string message;
};

// Parses `text` as a condition. Returns false and fills *error on failure.
// Thread-safe (no shared state).
bool ParseCondition(const std::string& text, Expr* out, ExprError* error);

}  // namespace rules
}  // namespace sluice
