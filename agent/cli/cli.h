// The `sluice` command framework (CONTRACT.md "sluice (CLI)"): global
// options, one CommandSpec per command, option parsing with `--help`,
// usage errors (exit 2), --since/--until times, sensor globs, and stdout
// that ends quietly on a closed pipe. Single-threaded, like the CLI.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace sluice {
namespace cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // daemon unreachable, buffer.db unreadable, check failed
constexpr int kExitUsage = 2;    // bad usage or invalid input
constexpr const char* kDefaultConfig = "/etc/sluice/sluice.toml";

// `sluice [--config FILE | --socket PATH | --data-dir DIR] COMMAND [--json]`.
// Global options are accepted before and after the command words.
struct Globals {
  std::string config_path = kDefaultConfig;
  bool config_given = false;
  std::string data_dir;  // --data-dir; empty: the config's agent.data_dir
  std::string socket;    // --socket; empty: the config's agent.control_socket
  bool json = false;
};

struct OptionSpec {
  const char* name;   // "--sensor", or "-n"
  const char* alias;  // second spelling ("--lines"), or nullptr
  bool takes_value;
  bool repeatable;  // values accumulate (e.g. several --sensor globs)
};

struct Parsed {
  std::map<std::string, std::vector<std::string>> values;  // by OptionSpec::name
  std::vector<std::string> positional;
  bool Has(const std::string& name) const { return values.count(name) != 0; }
  // The option's (last) value, or `fallback`.
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> All(const std::string& name) const;
};

struct CommandSpec;
using CommandFn = int (*)(const CommandSpec& spec, Globals& globals, const Parsed& args);

// One command of the dispatch table in sluice_main.cpp.
struct CommandSpec {
  const char* name;      // "tail", "buffer stats"
  const char* synopsis;  // "[-n N] [--sensor GLOB] [--follow] [--json]"
  const char* summary;   // one line for `sluice --help`
  const char* help;      // the rest of `sluice NAME --help`
  std::vector<OptionSpec> options;
  size_t min_positional;
  size_t max_positional;
  CommandFn run;  // nullptr: not built in this binary
};

// Writes "sluice: WHY" and the command's usage line to stderr. Returns 2.
int UsageError(const CommandSpec& spec, const std::string& why);
// `sluice NAME --help` text on stdout.
void PrintHelp(const CommandSpec& spec);

// Parses the words after the command name: the command's options, global
// options (updating *globals), `--` and positionals; --opt=value works too.
// Returns -1 when the command should run, else the exit status (0 after
// --help, 2 after a usage error, with its message printed).
int ParseArgs(const CommandSpec& spec, const std::vector<std::string>& words, Globals* globals,
              Parsed* out);

// A --since/--until value: a duration back from now_us ("30m", "2h", "7d")
// or an RFC 3339 time ("2026-11-25T16:00:00Z", fractions and +HH:MM
// offsets allowed). Returns Unix-epoch microseconds.
StatusOr<int64_t> ParseTimeArg(const std::string& text, int64_t now_us);

// Where buffer.db lives: --data-dir, else the config's agent.data_dir (the
// config is also read when --config was given, for agent.id). *agent is the
// config's agent.id, or "" when no config was read. Errors are config errors
// (exit 2).
Status ResolveDataDir(const Globals& globals, std::string* data_dir, std::string* agent);

// True if `name` matches one of `globs` (fnmatch: * ? [..]); true when
// `globs` is empty.
bool MatchesAny(const std::vector<std::string>& globs, const std::string& name);

// Stdout for streams: SIGPIPE ignored, so a closed pipe shows as EPIPE.
void IgnoreSigpipe();
// Writes `text` to stdout; false once stdout failed (the stream must stop).
bool Emit(const std::string& text);
// Flushes stdout (after each batch of a --follow); false once stdout failed.
bool FlushStdout();
// Flushes stdout. Returns kExitOk, also after EPIPE (the reader went away,
// e.g. `| head`), or kExitFailure with a message for any other write error.
int FinishStdout();

// SIGINT/SIGTERM set a flag instead of killing the process.
void InstallStopSignals();
bool StopRequested();

}  // namespace cli
}  // namespace sluice
