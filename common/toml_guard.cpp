#include "common/toml_guard.h"

#include <vector>

namespace sluice {
namespace {

// One pass over the text. `depth` is the nesting of the current position:
// the segments of the last table header, then the segments of the key being
// read, then one per open array or inline table (and the key segments inside
// an inline table). Brackets count wherever they appear outside strings and
// comments, so text that toml++ would reject is never under-counted.
class Scanner {
 public:
  Scanner(std::string_view text, const std::string& path, const TomlLimits& limits)
      : text_(text), path_(path), limits_(limits) {}

  Status Run() {
    while (i_ < text_.size()) {
      char c = text_[i_];
      if (c == '\n') {
        NewLine();
        continue;
      }
      if (c == ' ' || c == '\t' || c == '\r') {
        Advance();
        continue;
      }
      if (c == '#') {
        while (i_ < text_.size() && text_[i_] != '\n') Advance();
        continue;
      }
      bool stmt_start = stmt_start_;
      stmt_start_ = false;
      if (c == '"' || c == '\'') {
        if (key_mode_) SLUICE_RETURN_IF_ERROR(KeyChar());
        SkipString(c);
        continue;
      }
      if (c == '[' && stmt_start && stack_.empty()) {
        SLUICE_RETURN_IF_ERROR(Header());
        continue;
      }
      if (c == '[' || c == '{') {
        stack_.push_back(Frame{c, depth_, 0});
        SLUICE_RETURN_IF_ERROR(Deeper());
        stack_.back().depth_open = depth_;
        key_mode_ = c == '{';
        seg_open_ = false;
        Advance();
        continue;
      }
      if (c == ']' || c == '}') {
        if (!stack_.empty()) {
          depth_ = stack_.back().depth_before;
          stack_.pop_back();
        }
        key_mode_ = false;
        Advance();
        continue;
      }
      if (c == ',') {
        if (!stack_.empty()) {
          depth_ = stack_.back().depth_open;
          key_mode_ = stack_.back().kind == '{';
          seg_open_ = false;
        }
        Advance();
        continue;
      }
      if (key_mode_) {
        if (c == '.') {
          seg_open_ = false;
        } else if (c == '=') {
          key_mode_ = false;
        } else {
          SLUICE_RETURN_IF_ERROR(KeyChar());
        }
      }
      Advance();
    }
    return Status::Ok();
  }

 private:
  struct Frame {
    char kind;         // '[' or '{'
    int depth_before;  // depth_ before the bracket
    int depth_open;    // depth_ just inside it
  };

  void Advance() {
    ++i_;
    ++col_;
  }

  void NewLine() {
    ++i_;
    ++line_;
    col_ = 1;
    if (stack_.empty()) {
      key_mode_ = true;
      seg_open_ = false;
      stmt_start_ = true;
      depth_ = header_depth_;
    }
  }

  Status Deeper() {
    if (++depth_ <= limits_.max_depth) return Status::Ok();
    return InvalidArgument(path_ + ":" + std::to_string(line_) + ":" + std::to_string(col_) +
                           ": nested too deep (more than " + std::to_string(limits_.max_depth) +
                           " levels of table names, dotted keys, arrays and inline tables)");
  }

  // A character of a key: the first one of a segment is one level deeper.
  Status KeyChar() {
    if (seg_open_) return Status::Ok();
    seg_open_ = true;
    return Deeper();
  }

  // `[a.b."c"]` or `[[a.b]]` at the start of a line: its segments (and one
  // more for an array of tables) become the base depth of what follows.
  Status Header() {
    depth_ = 0;
    Advance();
    if (i_ < text_.size() && text_[i_] == '[') {
      Advance();
      SLUICE_RETURN_IF_ERROR(Deeper());
    }
    seg_open_ = false;
    while (i_ < text_.size() && text_[i_] != '\n' && text_[i_] != ']') {
      char c = text_[i_];
      if (c == '"' || c == '\'') {
        SLUICE_RETURN_IF_ERROR(KeyChar());
        SkipString(c);
        continue;
      }
      if (c == '.') {
        seg_open_ = false;
      } else if (c != ' ' && c != '\t') {
        SLUICE_RETURN_IF_ERROR(KeyChar());
      }
      Advance();
    }
    header_depth_ = depth_;
    seg_open_ = false;
    key_mode_ = false;  // the rest of the line is "]", "]]" or a comment
    return Status::Ok();
  }

  // Skips a basic or literal string, single- or multi-line, from its opening
  // quote. A single-line string also ends at a newline (toml++ rejects it).
  void SkipString(char q) {
    bool multi = text_.compare(i_, 3, std::string(3, q)) == 0;
    size_t open = multi ? 3 : 1;
    for (size_t k = 0; k < open; ++k) Advance();
    while (i_ < text_.size()) {
      char c = text_[i_];
      if (c == '\\' && q == '"') {
        Advance();
        if (i_ < text_.size() && text_[i_] == '\n') {
          if (!multi) return;
          ++i_;
          ++line_;
          col_ = 1;
        } else if (i_ < text_.size()) {
          Advance();
        }
        continue;
      }
      if (c == '\n') {
        if (!multi) return;
        ++i_;
        ++line_;
        col_ = 1;
        continue;
      }
      if (c == q) {
        if (!multi) {
          Advance();
          return;
        }
        if (text_.compare(i_, 3, std::string(3, q)) == 0) {
          for (int k = 0; k < 3; ++k) Advance();
          // Up to two more quotes belong to the content: `""""x""""`.
          for (int k = 0; k < 2 && i_ < text_.size() && text_[i_] == q; ++k) Advance();
          return;
        }
      }
      Advance();
    }
  }

  std::string_view text_;
  const std::string& path_;
  TomlLimits limits_;
  size_t i_ = 0;
  int line_ = 1;
  int col_ = 1;
  std::vector<Frame> stack_;
  int header_depth_ = 0;
  int depth_ = 0;
  bool key_mode_ = true;
  bool seg_open_ = false;
  bool stmt_start_ = true;
};

}  // namespace

Status PrescanToml(std::string_view text, const std::string& path, const TomlLimits& limits) {
  if (text.size() > limits.max_bytes) {
    int line = 1, col = 1;
    for (size_t i = 0; i < limits.max_bytes; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return InvalidArgument(path + ":" + std::to_string(line) + ":" + std::to_string(col) +
                           ": too long (" + std::to_string(text.size()) +
                           " bytes; a TOML file may hold at most " +
                           std::to_string(limits.max_bytes) + ")");
  }
  return Scanner(text, path, limits).Run();
}

}  // namespace sluice
