#include "rules/source_map.h"

#include <cstdint>

#include "common/utf8.h"

namespace sluice {
namespace rules {
namespace {

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

class Walker {
 public:
  Walker(const std::string& text, size_t i, SourcePos pos) : text_(text), i_(i), pos_(pos) {}

  bool done() const { return i_ >= text_.size(); }
  char peek(size_t k = 0) const { return i_ + k < text_.size() ? text_[i_ + k] : '\0'; }
  bool starts(const char* s) const { return text_.compare(i_, std::char_traits<char>::length(s), s) == 0; }
  SourcePos pos() const { return pos_; }

  // Advances one byte, tracking line and code-point column.
  void step() {
    char c = text_[i_++];
    if (c == '\n') {
      ++pos_.line;
      pos_.column = 1;
    } else if (i_ >= text_.size() || !IsContinuation(text_[i_])) {
      ++pos_.column;
    }
  }
  void step(size_t n) {
    for (size_t k = 0; k < n && !done(); ++k) step();
  }

 private:
  const std::string& text_;
  size_t i_;
  SourcePos pos_;
};

}  // namespace

std::vector<SourcePos> MapStringSource(const std::string& file_text, int line, int column,
                                       const std::string& decoded) {
  std::vector<SourcePos> map;
  if (line < 1 || column < 1) return map;
  // Find the start of the value: line `line`, code point `column`.
  size_t i = 0;
  for (int l = 1; l < line; ++l) {
    i = file_text.find('\n', i);
    if (i == std::string::npos) return map;
    ++i;
  }
  for (int c = 1; c < column; ++c) {
    if (i >= file_text.size() || file_text[i] == '\n') return map;
    ++i;
    while (i < file_text.size() && IsContinuation(file_text[i])) ++i;
  }
  Walker w(file_text, i, SourcePos{line, column});
  const bool literal = w.peek() == '\'';
  if (!literal && w.peek() != '"') return map;
  const bool multi = literal ? w.starts("'''") : w.starts("\"\"\"");
  const char* close = literal ? (multi ? "'''" : "'") : (multi ? "\"\"\"" : "\"");
  w.step(multi ? 3 : 1);
  if (multi) {
    if (w.starts("\r\n")) w.step(2);
    else if (w.peek() == '\n') w.step();
  }
  std::string out;
  while (!w.done()) {
    // A multi-line closing delimiter may be preceded by up to two quotes
    // that belong to the content.
    if (w.starts(close) && !(multi && w.peek(3) == close[0])) break;
    SourcePos at = w.pos();
    char c = w.peek();
    if (c == '\n' && !multi) return {};
    if (c == '\r' && w.peek(1) == '\n') {
      w.step();
      continue;
    }
    if (c == '\\' && !literal) {
      char e = w.peek(1);
      const char* simple = "btnfr\"\\e";
      const char* value = "\b\t\n\f\r\"\\\x1b";
      bool done = false;
      for (int k = 0; simple[k]; ++k) {
        if (e == simple[k]) {
          out.push_back(value[k]);
          map.push_back(at);
          w.step(2);
          done = true;
          break;
        }
      }
      if (done) continue;
      if (e == 'u' || e == 'U') {
        int digits = e == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (int k = 0; k < digits; ++k) {
          int h = HexDigitValue(w.peek(2 + k));
          if (h < 0) return {};
          cp = cp * 16 + static_cast<uint32_t>(h);
        }
        if (cp > 0x10FFFF) return {};
        size_t before = out.size();
        AppendUtf8(cp, &out);
        map.insert(map.end(), out.size() - before, at);
        w.step(2 + digits);
        continue;
      }
      if (multi) {  // line-ending backslash: trims whitespace and newlines
        w.step();
        while (!w.done() && (w.peek() == ' ' || w.peek() == '\t' || w.peek() == '\n' ||
                             w.peek() == '\r')) {
          w.step();
        }
        continue;
      }
      return {};
    }
    out.push_back(c);
    map.push_back(at);
    w.step();
  }
  if (w.done() || out != decoded) return {};
  map.push_back(w.pos());
  return map;
}

}  // namespace rules
}  // namespace sluice
