// sluice: the operator's command-line tool (CONTRACT.md "sluice (CLI)").
// One table of commands; each entry names its options, its help text and
// the function that runs it (agent/cli/cli_commands.h). History commands read
// buffer.db read-only and work whether or not the daemon runs; live
// commands (status, metrics) ask the daemon over its control socket.
#include <cstdio>
#include <string>
#include <vector>

#include "agent/cli/cli.h"
#include "agent/cli/cli_commands.h"
#include "agent/cli/cli_live.h"

namespace sluice {
namespace cli {
namespace {

constexpr OptionSpec kSince{"--since", nullptr, true, false};
constexpr OptionSpec kUntil{"--until", nullptr, true, false};
constexpr OptionSpec kSensor{"--sensor", nullptr, true, true};

// status and metrics: the live commands of agent/cli/cli_live.h.
int RunLive(const std::string& command, Globals& globals, const Parsed& args) {
  LiveCli live{globals.config_path, globals.config_given, globals.socket, globals.json};
  return RunLiveCommand(live, command, args.Has("--watch"));
}
int RunStatus(const CommandSpec&, Globals& globals, const Parsed& args) {
  return RunLive("status", globals, args);
}
int RunMetrics(const CommandSpec&, Globals& globals, const Parsed& args) {
  return RunLive("metrics", globals, args);
}

// The dispatch table.
const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> commands = {
      {"status",
       "[--watch] [--json]",
       "The running daemon: sensors, buffer, upstreams, alerts.",
       "  Asks sluiced over its control socket (--socket, or the config's\n"
       "  agent.control_socket); exit 1 when the daemon is not running.\n",
       {{"--watch", nullptr, false, false}},
       0,
       0,
       RunStatus},
      {"metrics",
       "",
       "The running daemon's counters and gauges (Prometheus text).",
       "  Asks sluiced over its control socket; exit 1 when it is not running.\n",
       {},
       0,
       0,
       RunMetrics},
      {"tail",
       "[-n N] [--sensor GLOB] [--follow] [--json]",
       "The last N events of buffer.db (readings and alerts).",
       "  -n N             how many (default 10; 0 with --follow: only new ones)\n"
       "  --sensor GLOB    only readings of matching sensors (* ? [..]; repeatable)\n"
       "  --follow, -f     keep printing events as the daemon commits them\n"
       "                   (polls every 200 ms; Ctrl-C ends it, exit 0)\n"
       "  --json           JSON lines with the uplink payload's fields\n"
       "  Lines: TIME  seq SEQ  SENSOR  VALUE UNIT, or TIME  seq SEQ  ALERT RULE\n"
       "  STATE SEVERITY value V  MESSAGE.\n",
       {{"-n", "--lines", true, false}, kSensor, {"--follow", "-f", false, false}},
       0,
       0,
       RunTail},
      {"alerts",
       "[--active] [--since D] [--until D] [--json]",
       "Alert events (firing, resolved) stored in buffer.db.",
       "  --active         only rules whose latest stored state is firing\n"
       "  --since D        alerts at or after D; --until D: before D\n"
       "                   (D: 30m, 2h, 7d back from now, or 2026-11-25T16:00:00Z)\n"
       "  --json           JSON lines with the uplink alert payload's fields\n",
       {{"--active", nullptr, false, false}, kSince, kUntil},
       0,
       0,
       RunAlerts},
      {"export",
       "[--since D] [--until D] [--sensor GLOB] [--format csv|jsonl]",
       "Stream buffer.db's events to stdout as CSV or JSON lines.",
       "  --format csv     (default) header seq,time,ts_us,kind,sensor,value,unit,quality,\n"
       "                   rule,state,severity,message,labels; RFC 4180 quoting\n"
       "  --format jsonl   one uplink JSON document per line (also: --json)\n"
       "  --since D        events at or after D; --until D: before D\n"
       "  --sensor GLOB    only readings of matching sensors (* ? [..]; repeatable)\n"
       "  D: a duration back from now (30s, 10m, 2h, 7d) or an RFC 3339 time\n"
       "  (2026-11-25T16:00:00Z, 2026-11-25T17:00:00.5+01:00), compared with the\n"
       "  events' own timestamps.\n"
       "  Events committed after the export started are left out. Progress goes to\n"
       "  stderr when it is a terminal. Ctrl-C stops it (exit 130).\n",
       {kSince, kUntil, kSensor, {"--format", nullptr, true, false}},
       0,
       0,
       RunExport},
      {"buffer stats",
       "[--json]",
       "Events, bytes, seq range, evictions, upstream cursors.",
       "  Reads buffer.db read-only; exit 1 when it cannot be read.\n",
       {},
       0,
       0,
       RunBufferStats},
      {"buffer check",
       "[--quick] [--json]",
       "Read-only integrity check of buffer.db (exit 1 on problems).",
       "  Checks SQLite's integrity_check (--quick: quick_check), the schema version,\n"
       "  the ring's accounting, every event body, seq continuity, upstream cursors\n"
       "  and the buffer.seq reservation. Changes nothing, quarantines nothing.\n",
       {{"--quick", nullptr, false, false}},
       0,
       0,
       RunBufferCheck},
      {"rules check",
       "FILE...",
       "Validate rule files: ok, or FILE:LINE:COL: errors (exit 2).",
       "",
       {},
       1,
       SIZE_MAX,
       RunRulesCheck},
      {"rules list",
       "[--json]",
       "The rules of the config's rules.files.",
       "",
       {},
       0,
       0,
       RunRulesList},
      {"rules backtest",
       "FILE... [--since D] [--json]",
       "Run rule files over the readings stored in buffer.db.",
       "  Prints each firing and resolved: time, rule, state, value, message.\n"
       "  --since D        only readings of the last D (a duration)\n",
       {kSince},
       1,
       SIZE_MAX,
       RunRulesBacktest},
  };
  return commands;
}

void PrintMainHelp(FILE* out) {
  std::fprintf(out,
               "usage: sluice [--config FILE | --socket PATH | --data-dir DIR] COMMAND "
               "[OPTIONS] [--json]\n\ncommands:\n");
  for (const CommandSpec& c : Commands()) {
    std::fprintf(out, "  %-15s %s\n", c.name, c.summary);
  }
  std::fprintf(out,
               "\n  --config FILE    sluiced's config (default %s)\n"
               "  --data-dir DIR   where buffer.db is (default: the config's agent.data_dir)\n"
               "  --socket PATH    the daemon's control socket (default: the config's)\n"
               "  --json           JSON output (JSON lines for streams)\n"
               "  --version, --help; `sluice COMMAND --help` for a command's options.\n"
               "Exit status: 0 ok, 1 failure (daemon not running, buffer.db unreadable,\n"
               "check failed), 2 bad usage or invalid input.\n",
               kDefaultConfig);
}

int MainUsageError(const std::string& why) {
  std::fprintf(stderr,
               "sluice: %s\nusage: sluice [--config FILE | --socket PATH | --data-dir DIR] "
               "COMMAND [OPTIONS]\nTry 'sluice --help'.\n",
               why.c_str());
  return kExitUsage;
}

// The command named by words[0] (and words[1] for groups), or nullptr.
const CommandSpec* Find(const std::vector<std::string>& words, size_t* used) {
  for (const CommandSpec& c : Commands()) {
    std::string name = c.name;
    size_t space = name.find(' ');
    if (space == std::string::npos) {
      if (words[0] == name) return *used = 1, &c;
    } else if (words.size() > 1 && words[0] == name.substr(0, space) &&
               words[1] == name.substr(space + 1)) {
      return *used = 2, &c;
    }
  }
  return nullptr;
}

// `sluice buffer` / `sluice rules --help`: the group's commands.
int GroupHelp(const std::string& group, bool error, const std::string& why) {
  FILE* out = error ? stderr : stdout;
  if (error) std::fprintf(out, "sluice: %s\n", why.c_str());
  std::fprintf(out, "usage: sluice [GLOBAL OPTIONS] %s COMMAND\n", group.c_str());
  for (const CommandSpec& c : Commands()) {
    std::string name = c.name;
    if (name.rfind(group + " ", 0) == 0) {
      std::fprintf(out, "  %-15s %s\n    %s\n", name.c_str(), c.synopsis, c.summary);
    }
  }
  return error ? kExitUsage : kExitOk;
}

bool IsGroup(const std::string& word) {
  for (const CommandSpec& c : Commands()) {
    if (std::string(c.name).rfind(word + " ", 0) == 0) return true;
  }
  return false;
}

int Main(int argc, char** argv) {
  Globals globals;
  std::vector<std::string> words(argv + 1, argv + argc);
  size_t i = 0;
  // Global options before the command.
  for (; i < words.size() && words[i].size() > 1 && words[i][0] == '-'; ++i) {
    const std::string& a = words[i];
    if (a == "--help" || a == "-h") {
      PrintMainHelp(stdout);
      return kExitOk;
    }
    if (a == "--version") {
      std::printf("sluice %s\n", SLUICE_VERSION);
      return kExitOk;
    }
    if (a == "--json") {
      globals.json = true;
      continue;
    }
    std::string name = a, value;
    size_t eq = a.find('=');
    if (eq != std::string::npos) name = a.substr(0, eq), value = a.substr(eq + 1);
    if (name != "--config" && name != "--data-dir" && name != "--socket") {
      return MainUsageError("unknown option \"" + a + "\"");
    }
    if (eq == std::string::npos) {
      if (i + 1 >= words.size()) return MainUsageError(name + " needs a value");
      value = words[++i];
    }
    if (name == "--config") globals.config_path = value, globals.config_given = true;
    if (name == "--data-dir") globals.data_dir = value;
    if (name == "--socket") globals.socket = value;
  }
  words.erase(words.begin(), words.begin() + static_cast<long>(i));
  if (words.empty()) return MainUsageError("no command");
  if (words[0] == "help") {
    words.erase(words.begin());
    if (words.empty()) {
      PrintMainHelp(stdout);
      return kExitOk;
    }
    words.push_back("--help");
  }
  size_t used = 0;
  const CommandSpec* spec = Find(words, &used);
  if (spec == nullptr) {
    if (IsGroup(words[0])) {
      if (words.size() > 1 && (words[1] == "--help" || words[1] == "-h")) {
        return GroupHelp(words[0], false, "");
      }
      return GroupHelp(words[0], true,
                       words.size() > 1 ? "unknown command \"" + words[0] + " " + words[1] + "\""
                                        : words[0] + ": which command?");
    }
    return MainUsageError("unknown command \"" + words[0] + "\"");
  }
  Parsed parsed;
  int rc = ParseArgs(*spec,
                     std::vector<std::string>(words.begin() + static_cast<long>(used), words.end()),
                     &globals, &parsed);
  if (rc >= 0) return rc;
  if (spec->run == nullptr) {
    std::fprintf(stderr, "sluice %s: not available in this build\n", spec->name);
    return kExitFailure;
  }
  return spec->run(*spec, globals, parsed);
}

}  // namespace
}  // namespace cli
}  // namespace sluice

int main(int argc, char** argv) { return sluice::cli::Main(argc, argv); }
