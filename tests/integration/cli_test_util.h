// Helpers for the `sluice` CLI tests: run the real binary, split and parse
// its output (CSV per RFC 4180, JSON lines with common/json_parse.h), and a
// real sluiced with a push listener and one rule. Not thread-safe.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/json_parse.h"
#include "tests/integration/it_support.h"

namespace sluice {
namespace testing {

inline std::string SluicePath() { return BinDir() + "/sluice"; }

inline int ExitCode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1000 - status; }

struct CliRun {
  int code = -1;  // exit status, or -1000 - raw wait status
  std::string out, err;
  long max_rss_kib = 0;  // the process's peak RSS (wait4's rusage)
};

// Runs `program ARGS` to completion, stdout and stderr to files (bounded:
// 120 s, then SIGKILL). Its own fork/exec so that wait4 gives this one
// process's peak RSS.
inline CliRun RunProgram(const std::string& program, const std::vector<std::string>& args,
                         const std::string& scratch) {
  static int counter = 0;
  const std::string base = scratch + "/cli" + std::to_string(counter++);
  const std::string out_path = base + ".out", err_path = base + ".err";
  std::vector<std::string> argv_s = {program};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(&a[0]);
  argv.push_back(nullptr);
  CliRun r;
  pid_t pid = fork();
  if (pid == 0) {
    int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (pid < 0) return r;
  int status = 0;
  struct rusage ru = {};
  const int64_t deadline = MonoNowUs() + 120000000;
  pid_t got = 0;
  while ((got = wait4(pid, &status, WNOHANG, &ru)) == 0 && MonoNowUs() < deadline) SleepMs(5);
  if (got == 0) {
    kill(pid, SIGKILL);
    got = wait4(pid, &status, 0, &ru);
  }
  if (got != pid) return r;
  r.code = ExitCode(status);
  r.max_rss_kib = ru.ru_maxrss;
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  return r;
}

// Runs `sluice ARGS` (see RunProgram).
inline CliRun RunCli(const std::vector<std::string>& args, const std::string& scratch) {
  return RunProgram(SluicePath(), args, scratch);
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// Splits CSV text into records of fields (RFC 4180: quoted fields may hold
// commas, doubled quotes and newlines). *ok = false on a malformed quote.
inline std::vector<std::vector<std::string>> ParseCsv(const std::string& text, bool* ok) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, was_quoted = false;
  *ok = true;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field.push_back(c);
      }
    } else if (c == '"') {
      if (!field.empty() || was_quoted) *ok = false;
      quoted = was_quoted = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      was_quoted = false;
    } else if (c == '\n') {
      row.push_back(field);
      rows.push_back(row);
      row.clear();
      field.clear();
      was_quoted = false;
    } else {
      if (was_quoted) *ok = false;
      field.push_back(c);
    }
  }
  if (quoted || !field.empty() || !row.empty()) *ok = false;  // no final newline
  return rows;
}

// Parses each line as one JSON object; *ok = false if one is not.
inline std::vector<JsonValue> ParseJsonLines(const std::string& text, bool* ok) {
  std::vector<JsonValue> out;
  *ok = true;
  for (const std::string& l : Lines(text)) {
    auto v = ParseJson(l);
    if (!v.ok() || !v->is_object()) {
      *ok = false;
      continue;
    }
    out.push_back(std::move(*v));
  }
  return out;
}

inline double Num(const JsonValue& v, const char* key) {
  const JsonValue* f = v.Find(key);
  return f ? f->AsNumber() : -1;
}

inline std::string Str(const JsonValue& v, const char* key) {
  const JsonValue* f = v.Find(key);
  return f && f->is_string() ? f->AsString() : "<absent>";
}

// A sluiced with a unix push listener (sensor "ingest") and, when `rules`
// is set, a rule file; config at dir/sluice.toml, data in dir/data.
struct Gateway {
  TempDir dir;
  ConfigSpec spec;
  std::string config, push_sock;
  Sluiced* daemon = nullptr;

  explicit Gateway(const std::string& rules, const std::string& extra_buffer = "") {
    spec.data_dir = dir.Join("data");
    spec.control_socket = dir.Join("ctl.sock");
    spec.extra_buffer = extra_buffer;
    push_sock = dir.Join("push.sock");
    spec.sensors.push_back(PushSensor("ingest", "unix://" + push_sock));
    std::string toml = spec.ToToml();
    if (!rules.empty()) {
      WriteFile(dir.Join("rules.toml"), rules);
      toml += "\n[rules]\nfiles = [\"" + dir.Join("rules.toml") + "\"]\n";
    }
    config = dir.Join("sluice.toml");
    WriteFile(config, toml);
  }
};

}  // namespace testing
}  // namespace sluice
