#include <glob.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "common/json.h"
#include "common/toml_parse.h"
#include "common/units.h"
#include "rules/rule.h"
#include "rules/source_map.h"

namespace sluice {
namespace rules {
namespace {

constexpr size_t kMaxName = 128;

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > kMaxName) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

uint64_t Fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// Every error of one load, each "FILE:LINE:COL: what".
class Errors {
 public:
  void At(const std::string& file, int line, int col, const std::string& what) {
    std::string where = file;
    if (line > 0) where += ":" + std::to_string(line) + ":" + std::to_string(col);
    lines_.push_back(where + ": " + what);
  }
  void At(const std::string& file, const toml::source_region& src, const std::string& what) {
    At(file, static_cast<int>(src.begin.line), static_cast<int>(src.begin.column), what);
  }
  // A message that already names its place.
  void Add(const std::string& line) { lines_.push_back(line); }
  bool empty() const { return lines_.empty(); }
  Status ToStatus() const {
    std::string out;
    for (const auto& l : lines_) {
      if (!out.empty()) out += '\n';
      out += l;
    }
    return InvalidArgument(out);
  }

 private:
  std::vector<std::string> lines_;
};

class FileParser {
 public:
  FileParser(const std::string& text, const std::string& path, Errors* errors)
      : text_(text), path_(path), errors_(errors) {}

  void Parse(RuleSet* set) {
    auto parsed = ParseToml(text_, path_);
    if (!parsed.ok()) {
      errors_->Add(parsed.status().message());
      return;
    }
    const toml::table& root = *parsed;
    for (auto&& [k, v] : root) {
      if (k.str() != "rule") {
        errors_->At(path_, k.source(), "unknown key \"" + std::string(k.str()) +
                                           "\" (a rule file holds [[rule]] tables)");
        continue;
      }
      const toml::array* arr = v.as_array();
      if (!arr || !arr->is_array_of_tables()) {
        errors_->At(path_, v.source(), "\"rule\" must be written as [[rule]] tables");
        continue;
      }
      size_t index = 0;
      for (const toml::node& t : *arr) {
        RuleDef def;
        if (ParseRule(*t.as_table(), ++index, &def)) set->rules.push_back(std::move(def));
      }
    }
  }

 private:
  void Error(const toml::node& n, const std::string& who, const std::string& what) {
    errors_->At(path_, n.source(), who + ": " + what);
  }

  // Maps an offset into the decoded string `n` to a file position.
  SourcePos PosIn(const toml::node& n, const std::string& decoded, size_t offset) {
    int line = static_cast<int>(n.source().begin.line);
    int col = static_cast<int>(n.source().begin.column);
    std::vector<SourcePos> map = MapStringSource(text_, line, col, decoded);
    if (offset < map.size()) return map[offset];
    return SourcePos{line, col + 1 + static_cast<int>(offset)};
  }

  const std::string* String(const toml::table& t, const char* key, const std::string& who,
                            bool required) {
    const toml::node* n = t.get(key);
    if (!n) {
      if (required) errors_->At(path_, t.source(), who + ": missing required key \"" + key + "\"");
      return nullptr;
    }
    if (!n->is_string()) {
      Error(*n, who, "\"" + std::string(key) + "\" must be a string, not " + TomlTypeName(*n));
      return nullptr;
    }
    return &n->as_string()->get();
  }

  bool Expression(const toml::table& t, const char* key, const std::string& who, bool required,
                  Expr* out) {
    const std::string* s = String(t, key, who, required);
    if (!s) return false;
    ExprError err;
    if (ParseCondition(*s, out, &err)) return true;
    SourcePos p = PosIn(*t.get(key), *s, err.offset);
    errors_->At(path_, p.line, p.column, who + ": \"" + key + "\": " + err.message);
    return false;
  }

  bool Duration(const toml::table& t, const char* key, const std::string& who, int64_t* out) {
    const std::string* s = String(t, key, who, false);
    if (!s) return t.get(key) == nullptr;
    auto d = ParseDuration(*s);
    if (!d.ok()) {
      Error(*t.get(key), who, "\"" + std::string(key) + "\": " + d.status().message());
      return false;
    }
    *out = *d;
    return true;
  }

  bool Labels(const toml::table& t, const std::string& who, RuleDef* def) {
    const toml::node* n = t.get("labels");
    if (!n) return true;
    const toml::table* lt = n->as_table();
    if (!lt) {
      Error(*n, who, "\"labels\" must be a table of strings, not " + std::string(TomlTypeName(*n)));
      return false;
    }
    bool ok = true;
    for (auto&& [k, v] : *lt) {
      std::string key(k.str());
      if (!ValidName(key)) {
        errors_->At(path_, k.source(), who + ": label name \"" + key +
                                           "\" must be 1-128 of [A-Za-z0-9._-]");
        ok = false;
      } else if (key == "value" || key == "rule" || key == "severity" || key == "state") {
        errors_->At(path_, k.source(), who + ": label name \"" + key +
                                           "\" is reserved for the message template");
        ok = false;
      } else if (!v.is_string()) {
        Error(v, who, "label \"" + key + "\" must be a string, not " + TomlTypeName(v));
        ok = false;
      } else {
        def->labels.emplace_back(key, v.as_string()->get());
      }
    }
    return ok;
  }

  bool Message(const toml::table& t, const std::string& who, RuleDef* def) {
    const toml::node* n = t.get("message");
    const std::string* s = String(t, "message", who, false);
    if (!s) {
      if (n) return false;
      def->message = "{rule} {state}: {value}";
    } else {
      def->message = *s;
    }
    const std::string& m = def->message;
    std::string text;
    auto flush = [&] {
      if (text.empty()) return;
      MessagePart p;
      p.text = std::move(text);
      def->message_parts.push_back(std::move(p));
      text.clear();
    };
    for (size_t i = 0; i < m.size(); ++i) {
      auto fail = [&](size_t at, const std::string& what) {
        SourcePos p = n ? PosIn(*n, m, at) : SourcePos{};
        errors_->At(path_, p.line, p.column, who + ": \"message\": " + what);
        return false;
      };
      char c = m[i];
      if ((c == '{' || c == '}') && i + 1 < m.size() && m[i + 1] == c) {
        text += c;
        ++i;
        continue;
      }
      if (c == '}') return fail(i, "unmatched \"}\" (write \"}}\" for a brace)");
      if (c != '{') {
        text += c;
        continue;
      }
      size_t end = m.find_first_of("{}", i + 1);
      if (end == std::string::npos || m[end] != '}') {
        return fail(i, "unclosed \"{\" (write \"{{\" for a brace)");
      }
      std::string name = m.substr(i + 1, end - i - 1);
      MessagePart part;
      if (name == "value") part.kind = MessagePart::kValue;
      else if (name == "rule") part.kind = MessagePart::kRule;
      else if (name == "severity") part.kind = MessagePart::kSeverity;
      else if (name == "state") part.kind = MessagePart::kState;
      else {
        size_t li = 0;
        while (li < def->labels.size() && def->labels[li].first != name) ++li;
        if (li == def->labels.size()) {
          return fail(i, "unknown placeholder {" + name +
                             "} (use value, rule, severity, state or a label name)");
        }
        part.kind = MessagePart::kLabel;
        part.label = li;
      }
      flush();
      def->message_parts.push_back(std::move(part));
      i = end;
    }
    flush();
    return true;
  }

  bool ParseRule(const toml::table& t, size_t index, RuleDef* def) {
    static const std::set<std::string> kKeys = {"name", "when", "clear", "for", "cooldown",
                                                "severity", "message", "labels"};
    std::string who = "rule #" + std::to_string(index);
    bool ok = true;
    def->file = path_;
    def->line = static_cast<int>(t.source().begin.line);
    def->column = static_cast<int>(t.source().begin.column);
    if (const std::string* name = String(t, "name", who, true)) {
      if (!ValidName(*name)) {
        Error(*t.get("name"), who, "name \"" + *name + "\" must be 1-128 of [A-Za-z0-9._-]");
        ok = false;
      } else {
        def->name = *name;
        who = "rule \"" + *name + "\"";
      }
    } else {
      ok = false;
    }
    for (auto&& [k, v] : t) {
      if (!kKeys.count(std::string(k.str()))) {
        errors_->At(path_, k.source(), who + ": unknown key \"" + std::string(k.str()) +
                                           "\" (use name, when, clear, for, cooldown, "
                                           "severity, message or labels)");
        ok = false;
      }
    }
    ok &= Expression(t, "when", who, true, &def->when);
    if (t.get("clear")) {
      def->has_clear = Expression(t, "clear", who, false, &def->clear);
      ok &= def->has_clear;
    }
    ok &= Duration(t, "for", who, &def->for_us);
    ok &= Duration(t, "cooldown", who, &def->cooldown_us);
    if (const std::string* sev = String(t, "severity", who, false)) {
      if (*sev != "info" && *sev != "warning" && *sev != "critical") {
        Error(*t.get("severity"), who,
              "severity \"" + *sev + "\" must be info, warning or critical");
        ok = false;
      } else {
        def->severity = *sev;
      }
    } else if (t.get("severity")) {
      ok = false;
    }
    ok &= Labels(t, who, def);
    ok &= Message(t, who, def);
    std::string identity = def->name + '\n' + def->when.canonical + '\n' +
                           (def->has_clear ? def->clear.canonical : std::string("\x01")) + '\n' +
                           std::to_string(def->for_us) + '\n' + std::to_string(def->cooldown_us);
    def->hash = Fnv1a(identity);
    return ok;
  }

  const std::string& text_;
  const std::string& path_;
  Errors* errors_;
};

// Appends `file`'s rules to *set; reports duplicates against `seen`.
void LoadOne(const std::string& text, const std::string& path, RuleSet* set, Errors* errors,
             std::map<std::string, std::string>* seen) {
  RuleSet one;
  FileParser(text, path, errors).Parse(&one);
  for (RuleDef& r : one.rules) {
    std::string where = r.file + ":" + std::to_string(r.line) + ":" + std::to_string(r.column);
    auto it = seen->find(r.name);
    if (it != seen->end()) {
      errors->At(r.file, r.line, r.column,
                 "duplicate rule name \"" + r.name + "\" (first defined at " + it->second + ")");
      continue;
    }
    (*seen)[r.name] = where;
    set->rules.push_back(std::move(r));
  }
  set->files.push_back(path);
}

bool ReadFile(const std::string& path, std::string* out, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = "cannot open: " + std::string(std::strerror(errno));
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    *why = "read failed";
    return false;
  }
  *out = ss.str();
  return true;
}

StatusOr<RuleSet> LoadPaths(const std::vector<std::string>& paths) {
  RuleSet set;
  Errors errors;
  std::map<std::string, std::string> seen;
  for (const std::string& path : paths) {
    std::string text, why;
    if (!ReadFile(path, &text, &why)) {
      errors.At(path, 0, 0, why);
      continue;
    }
    LoadOne(text, path, &set, &errors, &seen);
  }
  if (!errors.empty()) return errors.ToStatus();
  return set;
}

}  // namespace

StatusOr<RuleSet> ParseRuleFile(const std::string& text, const std::string& path) {
  RuleSet set;
  Errors errors;
  std::map<std::string, std::string> seen;
  LoadOne(text, path, &set, &errors, &seen);
  if (!errors.empty()) return errors.ToStatus();
  return set;
}

StatusOr<RuleSet> LoadRuleFiles(const std::vector<std::string>& paths) { return LoadPaths(paths); }

StatusOr<RuleSet> LoadRuleGlobs(const std::vector<std::string>& globs,
                                std::vector<std::string>* warnings) {
  std::vector<std::string> paths;
  std::set<std::string> taken;
  for (const std::string& pattern : globs) {
    glob_t g{};
    int rc = glob(pattern.c_str(), 0, nullptr, &g);
    if (rc == GLOB_NOMATCH) {
      if (warnings) warnings->push_back("rule files: \"" + pattern + "\" matches no file");
    } else if (rc != 0) {
      globfree(&g);
      return IoError("rule files: cannot expand \"" + pattern + "\"");
    } else {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        if (taken.insert(g.gl_pathv[i]).second) paths.push_back(g.gl_pathv[i]);
      }
    }
    globfree(&g);
  }
  return LoadPaths(paths);
}

std::string FormatValue(double value) {
  if (!std::isfinite(value)) return kNoValueText;
  if (std::fabs(value) >= 1e6) return JsonDouble(value);  // shortest round-trip
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  return buf;
}

std::string RenderMessage(const RuleDef& rule, const char* state, double value) {
  std::string out;
  for (const MessagePart& p : rule.message_parts) {
    switch (p.kind) {
      case MessagePart::kText: out += p.text; break;
      case MessagePart::kValue: out += FormatValue(value); break;
      case MessagePart::kRule: out += rule.name; break;
      case MessagePart::kSeverity: out += rule.severity; break;
      case MessagePart::kState: out += state; break;
      case MessagePart::kLabel: out += rule.labels[p.label].second; break;
    }
  }
  return out;
}

}  // namespace rules
}  // namespace sluice
