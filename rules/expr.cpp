#include "rules/expr.h"

#include <cmath>
#include <cstdlib>

#include "common/units.h"
#include "rules/lexer.h"

namespace sluice {
namespace rules {
namespace {

constexpr int kMaxDepth = 64;

enum class Type { kNumber, kCondition };

const char* TypeName(Type t) { return t == Type::kNumber ? "a number" : "a condition"; }

struct Operand {
  Type type = Type::kNumber;
  size_t offset = 0;
};

bool LookupFunc(const std::string& name, Func* f) {
  static const struct { const char* name; Func func; } kFuncs[] = {
      {"avg", Func::kAvg},     {"min", Func::kMin},     {"max", Func::kMax},
      {"sum", Func::kSum},     {"count", Func::kCount}, {"last", Func::kLast},
      {"delta", Func::kDelta}, {"rate", Func::kRate},   {"stddev", Func::kStddev},
      {"absent", Func::kAbsent},
  };
  for (const auto& e : kFuncs) {
    if (name == e.name) {
      *f = e.func;
      return true;
    }
  }
  return false;
}

class Parser {
 public:
  Parser(const std::vector<Token>& toks, Expr* out, ExprError* err)
      : toks_(toks), out_(out), err_(err) {}

  bool Run() {
    if (Peek().kind == Tok::kEnd) return Fail(0, "empty expression");
    Operand top;
    if (!ParseOr(&top)) return false;
    const Token& t = Peek();
    if (t.kind == Tok::kRParen) return Fail(t.offset, "unbalanced \")\"");
    if (t.kind != Tok::kEnd) {
      return Fail(t.offset, "unexpected " + Describe(t) + " after a complete expression");
    }
    if (top.type != Type::kCondition) {
      return Fail(top.offset,
                  "expected a condition (a comparison, absent(), and/or/not), not a number");
    }
    return true;
  }

  bool subject_set() const { return subject_set_; }

 private:
  const Token& Peek() const { return toks_[pos_]; }
  const Token& Next() { return toks_[pos_ < toks_.size() - 1 ? pos_++ : pos_]; }

  bool Fail(size_t offset, std::string message) {
    err_->offset = offset;
    err_->message = std::move(message);
    return false;
  }

  void Emit(Op op, size_t offset) {
    Node n;
    n.op = op;
    n.offset = static_cast<uint32_t>(offset);
    out_->program.push_back(n);
  }

  bool Need(const Operand& o, Type want, const Token& op, const char* side) {
    if (o.type == want) return true;
    return Fail(o.offset, "\"" + op.text + "\" needs " + TypeName(want) + " on its " + side +
                              ", not " + TypeName(o.type));
  }

  bool Enter(size_t offset) {
    if (++depth_ > kMaxDepth) return Fail(offset, "expression nested too deeply");
    return true;
  }

  bool ParseOr(Operand* out) {
    if (!ParseAnd(out)) return false;
    while (Peek().kind == Tok::kOr) {
      const Token& op = Next();
      Operand r;
      if (!ParseAnd(&r)) return false;
      if (!Need(*out, Type::kCondition, op, "left") || !Need(r, Type::kCondition, op, "right"))
        return false;
      Emit(Op::kOr, op.offset);
    }
    return true;
  }

  bool ParseAnd(Operand* out) {
    if (!ParseNot(out)) return false;
    while (Peek().kind == Tok::kAnd) {
      const Token& op = Next();
      Operand r;
      if (!ParseNot(&r)) return false;
      if (!Need(*out, Type::kCondition, op, "left") || !Need(r, Type::kCondition, op, "right"))
        return false;
      Emit(Op::kAnd, op.offset);
    }
    return true;
  }

  bool ParseNot(Operand* out) {
    if (Peek().kind != Tok::kNot) return ParseComparison(out);
    const Token& op = Next();
    if (!Enter(op.offset)) return false;
    Operand r;
    if (!ParseNot(&r)) return false;
    --depth_;
    if (!Need(r, Type::kCondition, op, "right")) return false;
    Emit(Op::kNot, op.offset);
    out->type = Type::kCondition;
    out->offset = op.offset;
    return true;
  }

  static bool ComparisonOp(Tok k, Op* op) {
    switch (k) {
      case Tok::kLt: *op = Op::kLt; return true;
      case Tok::kLe: *op = Op::kLe; return true;
      case Tok::kGt: *op = Op::kGt; return true;
      case Tok::kGe: *op = Op::kGe; return true;
      case Tok::kEq: *op = Op::kEq; return true;
      case Tok::kNe: *op = Op::kNe; return true;
      default: return false;
    }
  }

  bool ParseComparison(Operand* out) {
    uint32_t left_begin = static_cast<uint32_t>(out_->program.size());
    if (!ParseAdditive(out)) return false;
    uint32_t left_end = static_cast<uint32_t>(out_->program.size());
    Op cmp;
    if (!ComparisonOp(Peek().kind, &cmp)) return true;
    const Token& op = Next();
    Operand r;
    if (!ParseAdditive(&r)) return false;
    if (!Need(*out, Type::kNumber, op, "left") || !Need(r, Type::kNumber, op, "right"))
      return false;
    Op again;
    if (ComparisonOp(Peek().kind, &again)) {
      return Fail(Peek().offset, "comparisons do not chain; combine them with \"and\"");
    }
    Emit(cmp, op.offset);
    if (!subject_set_) {
      subject_set_ = true;
      out_->subject_begin = left_begin;
      out_->subject_end = left_end;
    }
    out->type = Type::kCondition;
    return true;
  }

  bool ParseAdditive(Operand* out) {
    if (!ParseMultiplicative(out)) return false;
    while (Peek().kind == Tok::kPlus || Peek().kind == Tok::kMinus) {
      const Token& op = Next();
      Operand r;
      if (!ParseMultiplicative(&r)) return false;
      if (!Need(*out, Type::kNumber, op, "left") || !Need(r, Type::kNumber, op, "right"))
        return false;
      Emit(op.kind == Tok::kPlus ? Op::kAdd : Op::kSub, op.offset);
    }
    return true;
  }

  bool ParseMultiplicative(Operand* out) {
    if (!ParseUnary(out)) return false;
    while (Peek().kind == Tok::kStar || Peek().kind == Tok::kSlash) {
      const Token& op = Next();
      Operand r;
      if (!ParseUnary(&r)) return false;
      if (!Need(*out, Type::kNumber, op, "left") || !Need(r, Type::kNumber, op, "right"))
        return false;
      Emit(op.kind == Tok::kStar ? Op::kMul : Op::kDiv, op.offset);
    }
    return true;
  }

  bool ParseUnary(Operand* out) {
    if (Peek().kind != Tok::kMinus) return ParsePrimary(out);
    const Token& op = Next();
    if (!Enter(op.offset)) return false;
    Operand r;
    if (!ParseUnary(&r)) return false;
    --depth_;
    if (!Need(r, Type::kNumber, op, "right")) return false;
    Emit(Op::kNeg, op.offset);
    out->type = Type::kNumber;
    out->offset = op.offset;
    return true;
  }

  // Called where an operand is expected but `t` cannot start one.
  bool MissingOperand(const Token& t) {
    if (pos_ > 0) {
      const Token& prev = toks_[pos_ - 1];
      if (IsOperator(prev.kind)) {
        return Fail(prev.offset, "\"" + prev.text + "\" is missing its right-hand operand");
      }
      if (prev.kind == Tok::kLParen && t.kind == Tok::kRParen) {
        return Fail(t.offset, "empty parentheses");
      }
    }
    if (t.kind == Tok::kEnd) return Fail(t.offset, "expected a value at the end");
    if (t.kind == Tok::kRParen) return Fail(t.offset, "unbalanced \")\"");
    if (IsOperator(t.kind)) {
      return Fail(t.offset, "\"" + t.text + "\" is missing its left-hand operand");
    }
    return Fail(t.offset, "expected a value, found " + Describe(t));
  }

  bool ParsePrimary(Operand* out) {
    const Token& t = Peek();
    out->offset = t.offset;
    out->type = Type::kNumber;
    switch (t.kind) {
      case Tok::kNumber: {
        Next();
        Node n;
        n.op = Op::kConst;
        n.number = t.number;
        n.offset = static_cast<uint32_t>(t.offset);
        out_->program.push_back(n);
        return true;
      }
      case Tok::kDuration:
        return Fail(t.offset, "a duration (" + t.text +
                                  ") is only allowed as a window; write a plain number");
      case Tok::kLParen: {
        Next();
        if (!Enter(t.offset)) return false;
        if (!ParseOr(out)) return false;
        --depth_;
        out->offset = t.offset;
        if (Peek().kind != Tok::kRParen) {
          if (Peek().kind == Tok::kEnd) return Fail(t.offset, "unclosed \"(\"");
          return Fail(Peek().offset, "expected \")\", found " + Describe(Peek()));
        }
        Next();
        return true;
      }
      case Tok::kName:
        if (toks_[pos_ + 1].kind == Tok::kLParen) return ParseCall(out);
        [[fallthrough]];
      case Tok::kQuoted: {
        Next();
        Ref ref;
        ref.sensor = t.text;
        Node n;
        n.op = Op::kLatest;
        n.ref = AddRef(ref);
        n.offset = static_cast<uint32_t>(t.offset);
        out_->program.push_back(n);
        return true;
      }
      default:
        return MissingOperand(t);
    }
  }

  // Counts the arguments of the call whose '(' is at toks_[open].
  size_t CountArgs(size_t open) const {
    int depth = 0;
    size_t args = 0;
    bool any = false;
    for (size_t i = open; i < toks_.size(); ++i) {
      Tok k = toks_[i].kind;
      if (k == Tok::kLParen) {
        if (depth++ == 0) continue;
      } else if (k == Tok::kRParen) {
        if (--depth == 0) break;
      } else if (k == Tok::kComma && depth == 1) {
        ++args;
        continue;
      } else if (k == Tok::kEnd) {
        break;
      }
      any = true;
    }
    return any || args > 0 ? args + 1 : 0;
  }

  bool ParseCall(Operand* out) {
    const Token& name = Next();
    Func func;
    if (!LookupFunc(name.text, &func)) {
      return Fail(name.offset, "unknown function \"" + name.text +
                                   "\" (use avg, min, max, sum, count, last, delta, rate, "
                                   "stddev or absent)");
    }
    const size_t open = pos_;
    Next();  // '('
    size_t nargs = CountArgs(open);
    if (nargs != 2) {
      return Fail(name.offset, name.text + "() takes 2 arguments (SENSOR, WINDOW), got " +
                                   std::to_string(nargs));
    }
    const Token& sensor = Peek();
    if (sensor.kind != Tok::kName && sensor.kind != Tok::kQuoted) {
      return Fail(sensor.offset, "the first argument of " + name.text +
                                     "() must be a sensor name, not " + Describe(sensor));
    }
    Next();
    if (Peek().kind != Tok::kComma) {
      return Fail(Peek().offset, "expected \",\" after the sensor name, found " + Describe(Peek()));
    }
    Next();
    Ref ref;
    ref.sensor = sensor.text;
    ref.windowed = true;
    size_t window_offset = Peek().offset;
    if (!ParseWindow(&ref.window)) return false;
    if (Peek().kind != Tok::kRParen) {
      if (Peek().kind == Tok::kEnd) return Fail(toks_[open].offset, "unclosed \"(\"");
      return Fail(Peek().offset, "expected \")\" after the window, found " + Describe(Peek()));
    }
    Next();
    Node n;
    n.offset = static_cast<uint32_t>(name.offset);
    if (func == Func::kAbsent) {
      if (ref.window.kind != WindowKind::kSliding) {
        return Fail(window_offset, "absent() takes a time window such as 2m, not " +
                                       ref.window.ToString());
      }
      n.op = Op::kAbsent;
      n.number = static_cast<double>(ref.window.length);
      ref.windowed = false;
      ref.window = WindowSpec();
      out->type = Type::kCondition;
      out_->uses_absent = true;
      if (!absent_seen_) {
        absent_seen_ = true;
        absent_begin_ = static_cast<uint32_t>(out_->program.size());
      }
    } else {
      n.op = Op::kWindow;
      n.func = func;
    }
    n.ref = AddRef(ref);
    out_->program.push_back(n);
    return true;
  }

  bool BadWindow(const Token& t, const std::string& why) {
    return Fail(t.offset, "bad window " + Describe(t) + ": " + why);
  }

  bool WindowDuration(const Token& t, int64_t* us) {
    if (t.kind == Tok::kNumber) return BadWindow(t, "a duration needs a unit, e.g. 30s");
    if (t.kind != Tok::kDuration) {
      return BadWindow(t, "expected a duration (30s), tumbling(1m) or last(100)");
    }
    auto d = ParseDuration(t.text);
    if (!d.ok()) return BadWindow(t, d.status().message());
    if (*d <= 0) return BadWindow(t, "a window must be longer than 0");
    *us = *d;
    return true;
  }

  bool ParseWindow(WindowSpec* w) {
    const Token& t = Next();
    if (t.kind == Tok::kName && (t.text == "tumbling" || t.text == "last") &&
        Peek().kind == Tok::kLParen) {
      Next();
      const Token& arg = Next();
      if (t.text == "tumbling") {
        w->kind = WindowKind::kTumbling;
        if (!WindowDuration(arg, &w->length)) return false;
      } else {
        w->kind = WindowKind::kCount;
        if (arg.kind != Tok::kNumber || arg.number != std::floor(arg.number) ||
            arg.number < 1 || arg.number > static_cast<double>(kMaxCountWindow)) {
          return BadWindow(arg, "last(N) takes a whole number of readings from 1 to " +
                                    std::to_string(kMaxCountWindow));
        }
        w->length = static_cast<int64_t>(arg.number);
      }
      if (Peek().kind != Tok::kRParen) {
        return BadWindow(Peek(), "expected \")\" closing " + t.text + "(");
      }
      Next();
      return true;
    }
    w->kind = WindowKind::kSliding;
    return WindowDuration(t, &w->length);
  }

  uint32_t AddRef(const Ref& ref) {
    for (size_t i = 0; i < out_->refs.size(); ++i) {
      if (out_->refs[i] == ref) return static_cast<uint32_t>(i);
    }
    out_->refs.push_back(ref);
    return static_cast<uint32_t>(out_->refs.size() - 1);
  }

  const std::vector<Token>& toks_;
  size_t pos_ = 0;
  Expr* out_;
  ExprError* err_;
  int depth_ = 0;
  bool subject_set_ = false;

 public:
  bool absent_seen_ = false;
  uint32_t absent_begin_ = 0;
};

uint32_t MaxStack(const std::vector<Node>& program) {
  int64_t depth = 0, max = 0;
  for (const Node& n : program) {
    switch (n.op) {
      case Op::kConst: case Op::kLatest: case Op::kWindow: case Op::kAbsent:
        ++depth;
        break;
      case Op::kNeg: case Op::kNot:
        break;
      default:
        --depth;
    }
    if (depth > max) max = depth;
  }
  return static_cast<uint32_t>(max);
}

}  // namespace

std::string WindowSpec::ToString() const {
  if (kind == WindowKind::kCount) return "last(" + std::to_string(length) + ")";
  static const struct { int64_t us; const char* unit; } kUnits[] = {
      {86400000000, "d"}, {3600000000, "h"}, {60000000, "m"}, {1000000, "s"}, {1000, "ms"},
  };
  std::string d = std::to_string(length) + "us";
  for (const auto& u : kUnits) {
    if (length > 0 && length % u.us == 0) {
      d = std::to_string(length / u.us) + u.unit;
      break;
    }
  }
  return kind == WindowKind::kTumbling ? "tumbling(" + d + ")" : d;
}

const char* FuncName(Func f) {
  switch (f) {
    case Func::kAvg: return "avg";
    case Func::kMin: return "min";
    case Func::kMax: return "max";
    case Func::kSum: return "sum";
    case Func::kCount: return "count";
    case Func::kLast: return "last";
    case Func::kDelta: return "delta";
    case Func::kRate: return "rate";
    case Func::kStddev: return "stddev";
    case Func::kAbsent: return "absent";
  }
  return "?";
}

bool ParseCondition(const std::string& text, Expr* out, ExprError* error) {
  *out = Expr();
  out->source = text;
  std::vector<Token> toks;
  if (!Lex(text, &toks, error)) return false;
  Parser p(toks, out, error);
  if (!p.Run()) return false;
  if (!p.subject_set()) {
    // No comparison: the subject is the first absent() (a single node).
    out->subject_begin = p.absent_begin_;
    out->subject_end = p.absent_begin_ + 1;
  }
  out->canonical = Canonical(toks);
  out->max_stack = MaxStack(out->program);
  return true;
}

}  // namespace rules
}  // namespace sluice
