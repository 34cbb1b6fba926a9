#include "drivers/value_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "common/utf8.h"

namespace sluice {

std::string_view TrimSpace(std::string_view text) {
  const char* kSpace = " \t\r\n";
  size_t b = text.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  size_t e = text.find_last_not_of(kSpace);
  return text.substr(b, e - b + 1);
}

std::string Snippet(std::string_view text, size_t max) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const size_t len = c < 0x80 ? 1 : Utf8SequenceLength(text, i);
    if (out.size() + std::max<size_t>(len, 1) > max) break;
    if (len == 0 || c < 0x20 || c == 0x7f) {
      out.push_back('?');
      ++i;
    } else {
      out.append(text.substr(i, len));
      i += len;
    }
  }
  if (i < text.size()) out += "...";
  return out;
}

StatusOr<double> ParsePlainNumber(std::string_view text) {
  std::string_view t = TrimSpace(text);
  std::string_view digits = t;
  if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
  double v = 0;
  const bool signs_ok = t.size() == digits.size() ||
                        (!digits.empty() && digits.front() != '-' && digits.front() != '+');
  if (!digits.empty() && signs_ok) {
    const char* end = digits.data() + digits.size();
    std::from_chars_result r = std::from_chars(digits.data(), end, v);
    if (r.ec == std::errc() && r.ptr == end && std::isfinite(v)) return v;
  }
  if (t.empty()) return InvalidArgument("not a number: empty");
  return InvalidArgument("not a number: \"" + Snippet(t) + "\"");
}

}  // namespace sluice
