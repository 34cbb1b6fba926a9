#include <catch2/catch.hpp>

#include <string>

#include "rules/expr.h"

using namespace sluice::rules;

namespace {

// The postfix program as text: "a b c * + 1 >".
std::string Postfix(const Expr& e) {
  std::string out;
  for (const Node& n : e.program) {
    if (!out.empty()) out += ' ';
    switch (n.op) {
      case Op::kConst: {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", n.number);
        out += buf;
        break;
      }
      case Op::kLatest: out += e.refs[n.ref].sensor; break;
      case Op::kWindow:
        out += std::string(FuncName(n.func)) + "(" + e.refs[n.ref].sensor + "," +
               e.refs[n.ref].window.ToString() + ")";
        break;
      case Op::kAbsent: out += "absent(" + e.refs[n.ref].sensor + ")"; break;
      case Op::kNeg: out += "neg"; break;
      case Op::kAdd: out += "+"; break;
      case Op::kSub: out += "-"; break;
      case Op::kMul: out += "*"; break;
      case Op::kDiv: out += "/"; break;
      case Op::kLt: out += "<"; break;
      case Op::kLe: out += "<="; break;
      case Op::kGt: out += ">"; break;
      case Op::kGe: out += ">="; break;
      case Op::kEq: out += "=="; break;
      case Op::kNe: out += "!="; break;
      case Op::kAnd: out += "and"; break;
      case Op::kOr: out += "or"; break;
      case Op::kNot: out += "not"; break;
    }
  }
  return out;
}

Expr Parse(const std::string& text) {
  Expr e;
  ExprError err;
  INFO(text);
  bool ok = ParseCondition(text, &e, &err);
  INFO(err.message << " at " << err.offset);
  REQUIRE(ok);
  return e;
}

}  // namespace

TEST_CASE("precedence: or < and < not < comparisons < + - < * / < unary minus") {
  struct {
    const char* text;
    const char* postfix;
  } cases[] = {
      {"a + b * c > 1", "a b c * + 1 >"},
      {"a * b + c > 1", "a b * c + 1 >"},
      {"a - b - c > 1", "a b - c - 1 >"},
      {"a / b / c > 1", "a b / c / 1 >"},
      {"-a * b > 1", "a neg b * 1 >"},
      {"- - a > 1", "a neg neg 1 >"},
      {"(a + b) * c > 1", "a b + c * 1 >"},
      {"a > 1 or b > 2 and c > 3", "a 1 > b 2 > c 3 > and or"},
      {"(a > 1 or b > 2) and c > 3", "a 1 > b 2 > or c 3 > and"},
      {"not a > 1 and b < 2", "a 1 > not b 2 < and"},
      {"not not a >= 1", "a 1 >= not not"},
      {"a == 1 or a != 2 or a <= 3", "a 1 == a 2 != or a 3 <= or"},
      {"avg(boiler.temp, 30s) > 85", "avg(boiler.temp,30s) 85 >"},
      {"max(pump.rpm, 1m) < 10 and avg(pump.current, 1m) > 2.0",
       "max(pump.rpm,1m) 10 < avg(pump.current,1m) 2 > and"},
      {"absent(boiler.temp, 2m)", "absent(boiler.temp)"},
      {"sum(x, tumbling(1m)) > 1e3", "sum(x,tumbling(1m)) 1000 >"},
      {"stddev(x, last(100)) > .5", "stddev(x,last(100)) 0.5 >"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    CHECK(Postfix(Parse(c.text)) == c.postfix);
  }
}

TEST_CASE("names: '.', '-' and digits continue a name; subtraction needs spaces") {
  Expr e = Parse("a-b > 1");
  REQUIRE(e.refs.size() == 1);
  CHECK(e.refs[0].sensor == "a-b");
  e = Parse("a - b > 1");
  REQUIRE(e.refs.size() == 2);
  CHECK(Postfix(e) == "a b - 1 >");
  e = Parse("boiler.temp_2 > 1");
  CHECK(e.refs[0].sensor == "boiler.temp_2");
  e = Parse("x-1 > 0");  // one name
  CHECK(e.refs[0].sensor == "x-1");
  e = Parse("'1wire.t' > 0 and 'and' < 1");  // quoted: digit start, keyword
  CHECK(e.refs[0].sensor == "1wire.t");
  CHECK(e.refs[1].sensor == "and");
  e = Parse("avg > 1");  // a function name without '(' is a sensor
  CHECK(e.refs[0].sensor == "avg");
  e = Parse("avg(x,30s)>1");
  CHECK(Postfix(e) == "avg(x,30s) 1 >");
}

TEST_CASE("windows: sliding, tumbling and count; repeated references share a ref") {
  Expr e = Parse("avg(x, 30s) > 1 and max(x, 30s) < 5 and avg(x, tumbling(1m)) > 0 and "
                 "avg(x, last(10)) > 0 and x > 0");
  REQUIRE(e.refs.size() == 4);
  CHECK(e.refs[0].window == WindowSpec{WindowKind::kSliding, 30000000});
  CHECK(e.refs[1].window == WindowSpec{WindowKind::kTumbling, 60000000});
  CHECK(e.refs[2].window == WindowSpec{WindowKind::kCount, 10});
  CHECK_FALSE(e.refs[3].windowed);
  CHECK(WindowSpec{WindowKind::kSliding, 90000000}.ToString() == "90s");
  CHECK(WindowSpec{WindowKind::kTumbling, 86400000000}.ToString() == "tumbling(1d)");
  CHECK(WindowSpec{WindowKind::kSliding, 1500}.ToString() == "1500us");
}

TEST_CASE("the {value} subject is the left side of the first comparison") {
  Expr e = Parse("avg(x, 30s) * 2 > 85 and y < 3");
  CHECK(e.subject_begin == 0);
  CHECK(e.subject_end == 3);  // avg, 2, *
  e = Parse("not (y + 1 < 3)");
  CHECK(e.subject_begin == 0);
  CHECK(e.subject_end == 3);
  e = Parse("absent(x, 1m) or absent(y, 1m)");
  CHECK(e.subject_end - e.subject_begin == 1);
  CHECK(e.program[e.subject_begin].op == Op::kAbsent);
  CHECK(e.uses_absent);
}

TEST_CASE("canonical text ignores whitespace only") {
  CHECK(Parse("avg( x ,30s )>1").canonical == Parse("avg(x, 30s) > 1").canonical);
  CHECK(Parse("a - -b > 1").canonical == Parse("a - - b>1").canonical);
  CHECK(Parse("a > 1").canonical != Parse("a > 2").canonical);
}

TEST_CASE("every expression error names its byte offset") {
  struct {
    std::string text;
    size_t offset;
    const char* what;
  } cases[] = {
      {"foo(x, 30s) > 1", 0, "unknown function \"foo\""},
      {"avg(x) > 1", 0, "avg() takes 2 arguments (SENSOR, WINDOW), got 1"},
      {"avg() > 1", 0, "got 0"},
      {"avg(x, 30s, 5) > 1", 0, "got 3"},
      {"avg(x, 30) > 1", 7, "bad window number 30: a duration needs a unit"},
      {"avg(x, 30q) > 1", 7, "unknown unit"},
      {"avg(x, 1.5s) > 1", 7, "bad window"},
      {"avg(x, 0s) > 1", 7, "longer than 0"},
      {"avg(x, tumbling(0s)) > 1", 16, "longer than 0"},
      {"avg(x, tumbling(5)) > 1", 16, "needs a unit"},
      {"avg(x, last(0)) > 1", 12, "whole number of readings"},
      {"avg(x, last(2.5)) > 1", 12, "whole number"},
      {"avg(x, last(1000001)) > 1", 12, "whole number"},
      {"avg(x, sliding(1m)) > 1", 7, "expected a duration (30s), tumbling(1m) or last(100)"},
      {"avg(x, last(5) > 1", 15, "expected \")\" after the window"},
      {"avg(x, 30s > 1", 11, "expected \")\" after the window"},
      {"avg(5, 30s) > 1", 4, "must be a sensor name"},
      {"absent(x, last(5))", 10, "absent() takes a time window"},
      {"absent(x, tumbling(1m))", 10, "absent() takes a time window"},
      {"x >", 2, "\">\" is missing its right-hand operand"},
      {"x > 1 and", 6, "\"and\" is missing its right-hand operand"},
      {"x > 1 and not", 10, "\"not\" is missing its right-hand operand"},
      {"x + > 1", 2, "\"+\" is missing its right-hand operand"},
      {"* 5 > x", 0, "\"*\" is missing its left-hand operand"},
      {"(x > 1", 0, "unclosed \"(\""},
      {"((x > 1)", 0, "unclosed \"(\""},
      {"x > 1)", 5, "unbalanced \")\""},
      {"() > 1", 1, "empty parentheses"},
      {"(x > 1 y)", 7, "expected \")\", found name \"y\""},
      {"x $ 1", 2, "unexpected character \"$\""},
      {"x = 1", 2, "compare with \"==\""},
      {"x > 1 && y > 1", 6, "use \"and\""},
      {"!x", 0, "use \"not\""},
      {"x > 1 y", 6, "unexpected name \"y\" after a complete expression"},
      {"", 0, "empty expression"},
      {"   ", 0, "empty expression"},
      {"avg(x, 30s)", 0, "expected a condition"},
      {"x + 1", 0, "expected a condition"},
      {"x > 1 + (y < 2)", 8, "\"+\" needs a number on its right, not a condition"},
      {"x and y > 1", 0, "\"and\" needs a condition on its left, not a number"},
      {"not x", 4, "\"not\" needs a condition on its right"},
      {"-(x > 1)", 1, "needs a number"},
      {"1 < x < 3", 6, "comparisons do not chain"},
      {"x > 30s", 4, "only allowed as a window"},
      {"1e999 > x", 0, "out of range"},
      {"'x > 1", 2, "\" \" cannot be part of a quoted sensor name"},
      {"'' > 1", 0, "empty quoted sensor name"},
      {"x > 1 and 'abc", 10, "unterminated quoted sensor name"},
      {std::string(70, '(') + "x > 1" + std::string(70, ')'), 64, "nested too deeply"},
      {"x" + std::string(200, 'y') + " > 1", 0, "longer than 128"},
      {"x > \x01", 4, "byte 0x01"},
  };
  for (const auto& c : cases) {
    Expr e;
    ExprError err;
    INFO("expression: " << c.text);
    REQUIRE_FALSE(ParseCondition(c.text, &e, &err));
    INFO("message: " << err.message);
    CHECK(err.offset == c.offset);
    CHECK(err.message.find(c.what) != std::string::npos);
  }
}
