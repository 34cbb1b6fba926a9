// Rule files (CONTRACT.md "Rule files"): loading, validation and the
// compiled rule definitions the engine runs.
//
// [[rule]] keys: name (required; [A-Za-z0-9._-]{1,128}, unique across all
// files), when (required), clear, for, cooldown, severity (info | warning |
// critical; default warning), message, labels (table of strings). Anything
// else, a wrong type, a bad duration or expression, a duplicate name: an
// error "FILE:LINE:COL: what is wrong", one line per error, every error of
// every file. Expression errors point at the character inside the
// expression (exact for every TOML string form, escapes map to their
// backslash).
//
// message is a template: {value}, {rule}, {severity}, {state} ("firing" or
// "resolved") and {LABEL} for each label; {{ and }} are literal braces. An
// unknown placeholder is an error. Default: "{rule} {state}: {value}".
// {value} is printed with up to 6 significant digits (%.6g) below 1e6 in
// magnitude; from 1e6 up in the shortest form that reads back exactly, as
// the JSON "value" (1234567.25, 1e+100); "n/a" (kNoValueText) when it has
// no value (the alert's JSON "value" is then null).
//
// Thread-safe: no shared state; a RuleSet is a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/event.h"
#include "common/status.h"
#include "rules/expr.h"

namespace sluice {
namespace rules {

struct MessagePart {
  enum Kind { kText, kValue, kRule, kSeverity, kState, kLabel } kind = kText;
  std::string text;   // kText
  size_t label = 0;   // kLabel: index into RuleDef::labels
};

struct RuleDef {
  std::string name;
  std::string file;
  int line = 0;  // of the [[rule]] table
  int column = 0;
  Expr when;
  bool has_clear = false;
  Expr clear;                      // when has_clear
  int64_t for_us = 0;
  int64_t cooldown_us = 0;
  std::string severity = "warning";
  std::string message;             // template as written
  std::vector<MessagePart> message_parts;
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by key
  // Identity of what decides when the rule fires (name, when, clear, for,
  // cooldown; whitespace-insensitive). Reload and persisted state keep a
  // rule's windows and state only if this is unchanged. Stable across
  // builds (FNV-1a).
  uint64_t hash = 0;
};

struct RuleSet {
  std::vector<RuleDef> rules;
  std::vector<std::string> files;  // files loaded, in order
};

// Parses one rule file's text; `path` names it in errors.
StatusOr<RuleSet> ParseRuleFile(const std::string& text, const std::string& path);

// Loads exactly these files, in order (a missing file is an error). For
// `sluice rules check FILE...` and `rules backtest FILE...`.
StatusOr<RuleSet> LoadRuleFiles(const std::vector<std::string>& paths);

// Loads every file the glob(3) patterns match (each pattern's matches
// sorted, a file matched twice loaded once). A pattern matching nothing is
// not an error: it adds a warning to *warnings (may be null). For
// `rules.files` at start, on SIGHUP and for `sluiced --check`.
StatusOr<RuleSet> LoadRuleGlobs(const std::vector<std::string>& globs,
                                std::vector<std::string>* warnings);

// The rule's message for an alert in `state` with subject value `value`
// (not finite: no value).
std::string RenderMessage(const RuleDef& rule, const char* state, double value);

// {value} formatting (see above).
std::string FormatValue(double value);

}  // namespace rules
}  // namespace sluice
