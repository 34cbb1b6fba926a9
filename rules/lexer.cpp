#include "rules/lexer.h"

#include <cmath>
#include <cstdlib>

namespace sluice {
namespace rules {
namespace {

constexpr size_t kMaxNameLength = 128;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsNameStart(char c) { return IsAlpha(c) || c == '_'; }
bool IsNameChar(char c) { return IsAlpha(c) || IsDigit(c) || c == '_' || c == '.' || c == '-'; }

std::string Printable(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string("\"") + c + "\"";
  static const char kHex[] = "0123456789abcdef";
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 15];
}

bool Fail(ExprError* error, size_t offset, std::string message) {
  error->offset = offset;
  error->message = std::move(message);
  return false;
}

}  // namespace

bool Lex(const std::string& text, std::vector<Token>* out, ExprError* error) {
  out->clear();
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    Token t;
    t.offset = i;
    if (IsDigit(c) || (c == '.' && i + 1 < n && IsDigit(text[i + 1]))) {
      size_t j = i;
      while (j < n && IsDigit(text[j])) ++j;
      if (j < n && text[j] == '.' && j + 1 < n && IsDigit(text[j + 1])) {
        ++j;
        while (j < n && IsDigit(text[j])) ++j;
      }
      if (j < n && (text[j] == 'e' || text[j] == 'E')) {
        size_t k = j + 1;
        if (k < n && (text[k] == '+' || text[k] == '-')) ++k;
        if (k < n && IsDigit(text[k])) {
          while (k < n && IsDigit(text[k])) ++k;
          j = k;
        }
      }
      if (j < n && IsNameStart(text[j])) {
        while (j < n && (IsAlpha(text[j]) || IsDigit(text[j]) || text[j] == '_' || text[j] == '.'))
          ++j;
        t.kind = Tok::kDuration;
        t.text = text.substr(i, j - i);
      } else {
        t.kind = Tok::kNumber;
        t.text = text.substr(i, j - i);
        t.number = std::strtod(t.text.c_str(), nullptr);
        if (!std::isfinite(t.number)) {
          return Fail(error, i, "number " + t.text + " is out of range");
        }
      }
      i = j;
    } else if (IsNameStart(c)) {
      size_t j = i;
      while (j < n && IsNameChar(text[j])) ++j;
      t.text = text.substr(i, j - i);
      if (t.text.size() > kMaxNameLength) {
        return Fail(error, i, "name longer than " + std::to_string(kMaxNameLength) + " characters");
      }
      if (t.text == "and") t.kind = Tok::kAnd;
      else if (t.text == "or") t.kind = Tok::kOr;
      else if (t.text == "not") t.kind = Tok::kNot;
      else t.kind = Tok::kName;
      i = j;
    } else if (c == '\'') {
      size_t j = i + 1;
      while (j < n && IsNameChar(text[j])) ++j;
      if (j >= n || text[j] != '\'') {
        if (j < n) {
          return Fail(error, j, Printable(text[j]) + " cannot be part of a quoted sensor name");
        }
        return Fail(error, i, "unterminated quoted sensor name");
      }
      t.text = text.substr(i + 1, j - i - 1);
      if (t.text.empty()) return Fail(error, i, "empty quoted sensor name");
      if (t.text.size() > kMaxNameLength) {
        return Fail(error, i, "name longer than " + std::to_string(kMaxNameLength) + " characters");
      }
      t.kind = Tok::kQuoted;
      i = j + 1;
    } else {
      auto two = [&](char next) { return i + 1 < n && text[i + 1] == next; };
      size_t len = 1;
      switch (c) {
        case '(': t.kind = Tok::kLParen; break;
        case ')': t.kind = Tok::kRParen; break;
        case ',': t.kind = Tok::kComma; break;
        case '+': t.kind = Tok::kPlus; break;
        case '-': t.kind = Tok::kMinus; break;
        case '*': t.kind = Tok::kStar; break;
        case '/': t.kind = Tok::kSlash; break;
        case '<':
          if (two('=')) { t.kind = Tok::kLe; len = 2; } else t.kind = Tok::kLt;
          break;
        case '>':
          if (two('=')) { t.kind = Tok::kGe; len = 2; } else t.kind = Tok::kGt;
          break;
        case '=':
          if (!two('=')) return Fail(error, i, "unexpected \"=\" (compare with \"==\")");
          t.kind = Tok::kEq;
          len = 2;
          break;
        case '!':
          if (!two('=')) return Fail(error, i, "unexpected \"!\" (use \"not\" or \"!=\")");
          t.kind = Tok::kNe;
          len = 2;
          break;
        case '&':
          return Fail(error, i, "unexpected \"&\" (use \"and\")");
        case '|':
          return Fail(error, i, "unexpected \"|\" (use \"or\")");
        default:
          return Fail(error, i, "unexpected character " + Printable(c));
      }
      t.text = text.substr(i, len);
      i += len;
    }
    out->push_back(std::move(t));
  }
  Token end;
  end.kind = Tok::kEnd;
  end.offset = n;
  out->push_back(end);
  return true;
}

bool IsOperator(Tok k) {
  switch (k) {
    case Tok::kPlus: case Tok::kMinus: case Tok::kStar: case Tok::kSlash:
    case Tok::kLt: case Tok::kLe: case Tok::kGt: case Tok::kGe: case Tok::kEq: case Tok::kNe:
    case Tok::kAnd: case Tok::kOr: case Tok::kNot:
      return true;
    default:
      return false;
  }
}

std::string Describe(const Token& t) {
  switch (t.kind) {
    case Tok::kEnd: return "the end of the expression";
    case Tok::kNumber: return "number " + t.text;
    case Tok::kDuration: return "\"" + t.text + "\"";
    case Tok::kName: return "name \"" + t.text + "\"";
    case Tok::kQuoted: return "name '" + t.text + "'";
    default: return "\"" + t.text + "\"";
  }
}

std::string Canonical(const std::vector<Token>& toks) {
  std::string out;
  for (size_t i = 0; i + 1 < toks.size(); ++i) {
    const Token& t = toks[i];
    bool tight_before = t.kind == Tok::kRParen || t.kind == Tok::kComma ||
                        (t.kind == Tok::kLParen && i > 0 && toks[i - 1].kind == Tok::kName);
    bool after_open = i > 0 && (toks[i - 1].kind == Tok::kLParen ||
                                (toks[i - 1].kind == Tok::kMinus &&
                                 (i == 1 || IsOperator(toks[i - 2].kind) ||
                                  toks[i - 2].kind == Tok::kLParen ||
                                  toks[i - 2].kind == Tok::kComma)));
    if (!out.empty() && !tight_before && !after_open) out += ' ';
    if (t.kind == Tok::kQuoted) out += "'" + t.text + "'";
    else out += t.text;
  }
  return out;
}

}  // namespace rules
}  // namespace sluice
