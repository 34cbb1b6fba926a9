// Tokens of the rule expression language (lexical rules in expr.h).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "rules/expr.h"

namespace sluice {
namespace rules {

enum class Tok {
  kNumber, kDuration, kName, kQuoted,
  kLParen, kRParen, kComma,
  kPlus, kMinus, kStar, kSlash,
  kLt, kLe, kGt, kGe, kEq, kNe,
  kAnd, kOr, kNot,
  kEnd,
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t offset = 0;   // byte offset in the source
  std::string text;    // as written (quoted names: without the quotes)
  double number = 0;   // kNumber
};

// Splits `text` into tokens ending with kEnd (offset = text.size()).
bool Lex(const std::string& text, std::vector<Token>* out, ExprError* error);

// Binary or unary operators and keywords (for "dangling operator" errors).
bool IsOperator(Tok k);

// `"+"`, `number 5`, `name "x"`, `end of expression` — for messages.
std::string Describe(const Token& t);

// Tokens joined with normalized spacing: the definition's identity for
// reload and persisted state (whitespace changes do not count).
std::string Canonical(const std::vector<Token>& toks);

}  // namespace rules
}  // namespace sluice
