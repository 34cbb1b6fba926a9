#include "agent/cli/cli.h"

#include <fnmatch.h>
#include <signal.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "agent/config/config.h"
#include "common/units.h"

namespace sluice {
namespace cli {
namespace {

volatile sig_atomic_t g_stop = 0;
bool g_stdout_failed = false;
int g_stdout_errno = 0;

void OnStopSignal(int) { g_stop = 1; }

const OptionSpec* FindOption(const CommandSpec& spec, const std::string& name) {
  for (const OptionSpec& o : spec.options) {
    if (name == o.name || (o.alias != nullptr && name == o.alias)) return &o;
  }
  return nullptr;
}

// Parses exactly `n` digits at s[*i]; advances *i.
bool Digits(const std::string& s, size_t* i, int n, int* out) {
  int v = 0;
  for (int k = 0; k < n; ++k, ++*i) {
    if (*i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[*i]))) return false;
    v = v * 10 + (s[*i] - '0');
  }
  *out = v;
  return true;
}

bool Expect(const std::string& s, size_t* i, const char* any_of) {
  if (*i >= s.size() || std::strchr(any_of, s[*i]) == nullptr) return false;
  ++*i;
  return true;
}

StatusOr<int64_t> ParseRfc3339(const std::string& s) {
  size_t i = 0;
  struct tm tm = {};
  int year, mon, day, hour, min, sec;
  if (!Digits(s, &i, 4, &year) || !Expect(s, &i, "-") || !Digits(s, &i, 2, &mon) ||
      !Expect(s, &i, "-") || !Digits(s, &i, 2, &day) || !Expect(s, &i, "Tt ") ||
      !Digits(s, &i, 2, &hour) || !Expect(s, &i, ":") || !Digits(s, &i, 2, &min) ||
      !Expect(s, &i, ":") || !Digits(s, &i, 2, &sec)) {
    return InvalidArgument(
        "not a duration (30m, 2h, 7d) or an RFC 3339 time "
        "(2026-11-25T16:00:00Z)");
  }
  int64_t frac_us = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int64_t scale = 100000;
    size_t start = i;
    for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
      frac_us += (s[i] - '0') * scale;
      scale /= 10;
    }
    if (i == start) return InvalidArgument("no digits after '.'");
  }
  int64_t offset_s = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i++] == '-' ? -1 : 1;
    int oh, om;
    if (!Digits(s, &i, 2, &oh) || !Expect(s, &i, ":") || !Digits(s, &i, 2, &om) || oh > 23 ||
        om > 59) {
      return InvalidArgument("bad UTC offset (+HH:MM)");
    }
    offset_s = sign * (oh * 3600 + om * 60);
  } else {
    return InvalidArgument("no time zone: end with Z or +HH:MM");
  }
  if (i != s.size()) return InvalidArgument("trailing characters");
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return InvalidArgument("field out of range");
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  if (tm.tm_mday != day) return InvalidArgument("no such day");  // timegm normalised it
  return (static_cast<int64_t>(t) - offset_s) * 1000000 + frac_us;
}

}  // namespace

std::string Parsed::Get(const std::string& name, const std::string& fallback) const {
  auto it = values.find(name);
  return it == values.end() || it->second.empty() ? fallback : it->second.back();
}

std::vector<std::string> Parsed::All(const std::string& name) const {
  auto it = values.find(name);
  return it == values.end() ? std::vector<std::string>() : it->second;
}

int UsageError(const CommandSpec& spec, const std::string& why) {
  std::fprintf(stderr,
               "sluice %s: %s\nusage: sluice [GLOBAL OPTIONS] %s %s\n"
               "Try 'sluice %s --help'.\n",
               spec.name, why.c_str(), spec.name, spec.synopsis, spec.name);
  return kExitUsage;
}

void PrintHelp(const CommandSpec& spec) {
  std::printf("usage: sluice [GLOBAL OPTIONS] %s %s\n\n%s\n%s", spec.name, spec.synopsis,
              spec.summary, spec.help);
  std::printf(
      "\nglobal options: --config FILE (default %s), --data-dir DIR,\n"
      "  --socket PATH, --json. Exit status: 0 ok, 1 failure, 2 bad usage.\n",
      kDefaultConfig);
}

int ParseArgs(const CommandSpec& spec, const std::vector<std::string>& words, Globals* globals,
              Parsed* out) {
  bool options_done = false;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string w = words[i];
    if (options_done || w.size() < 2 || w[0] != '-') {
      out->positional.push_back(w);
      continue;
    }
    if (w == "--") {
      options_done = true;
      continue;
    }
    if (w == "--help" || w == "-h") {
      PrintHelp(spec);
      return kExitOk;
    }
    std::string value;
    bool has_inline = false;
    size_t eq = w.find('=');
    if (w.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = w.substr(eq + 1);
      w = w.substr(0, eq);
      has_inline = true;
    }
    const bool global = w == "--config" || w == "--data-dir" || w == "--socket";
    const OptionSpec* o = global ? nullptr : FindOption(spec, w);
    if (w == "--json" && o == nullptr) {
      if (has_inline) return UsageError(spec, "--json takes no value");
      globals->json = true;
      continue;
    }
    if (!global && o == nullptr) return UsageError(spec, "unknown option \"" + w + "\"");
    const bool takes_value = global || o->takes_value;
    if (!takes_value) {
      if (has_inline) return UsageError(spec, w + " takes no value");
      out->values[o->name].push_back("");
      continue;
    }
    if (!has_inline) {
      if (i + 1 >= words.size()) return UsageError(spec, w + " needs a value");
      value = words[++i];
    }
    if (w == "--config") {
      globals->config_path = value;
      globals->config_given = true;
    } else if (w == "--data-dir") {
      globals->data_dir = value;
    } else if (w == "--socket") {
      globals->socket = value;
    } else {
      auto& v = out->values[o->name];
      if (!o->repeatable) v.clear();
      v.push_back(value);
    }
  }
  if (out->positional.size() < spec.min_positional) {
    return UsageError(spec, "missing argument");
  }
  if (out->positional.size() > spec.max_positional) {
    return UsageError(spec, "unexpected argument \"" + out->positional[spec.max_positional] + "\"");
  }
  return -1;
}

StatusOr<int64_t> ParseTimeArg(const std::string& text, int64_t now_us) {
  if (!text.empty() && std::isdigit(static_cast<unsigned char>(text[0])) &&
      text.find('-') == std::string::npos) {
    auto d = ParseDuration(text);
    if (!d.ok()) return d.status();
    return now_us - *d;
  }
  return ParseRfc3339(text);
}

Status ResolveDataDir(const Globals& globals, std::string* data_dir, std::string* agent) {
  *data_dir = globals.data_dir;
  agent->clear();
  if (!data_dir->empty() && !globals.config_given) return Status::Ok();
  auto cfg = LoadConfig(globals.config_path);
  if (!cfg.ok()) return cfg.status();
  if (data_dir->empty()) *data_dir = cfg->agent.data_dir;
  *agent = cfg->agent.id;
  return Status::Ok();
}

bool MatchesAny(const std::vector<std::string>& globs, const std::string& name) {
  if (globs.empty()) return true;
  for (const std::string& g : globs) {
    if (fnmatch(g.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

void IgnoreSigpipe() { signal(SIGPIPE, SIG_IGN); }

bool Emit(const std::string& text) {
  if (g_stdout_failed) return false;
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size()) {
    g_stdout_failed = true;
    g_stdout_errno = errno;
  }
  return !g_stdout_failed;
}

bool FlushStdout() {
  if (!g_stdout_failed && (std::fflush(stdout) != 0 || std::ferror(stdout))) {
    g_stdout_failed = true;
    g_stdout_errno = errno;
  }
  return !g_stdout_failed;
}

int FinishStdout() {
  FlushStdout();
  if (!g_stdout_failed || g_stdout_errno == EPIPE) return kExitOk;
  std::fprintf(stderr, "sluice: writing to stdout: %s\n", std::strerror(g_stdout_errno));
  return kExitFailure;
}

void InstallStopSignals() {
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool StopRequested() { return g_stop != 0; }

}  // namespace cli
}  // namespace sluice
