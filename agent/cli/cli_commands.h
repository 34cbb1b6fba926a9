// The `sluice` commands behind the dispatch table in sluice_main.cpp. Each
// returns the process exit status (agent/cli/cli.h: 0 ok, 1 failure, 2 usage).
#pragma once

#include "agent/cli/cli.h"

namespace sluice {
namespace cli {

// History commands (agent/cli/cli_history.cpp, agent/cli/cli_export.cpp): read
// buffer.db read-only, daemon running or not.
int RunTail(const CommandSpec& spec, Globals& globals, const Parsed& args);
int RunAlerts(const CommandSpec& spec, Globals& globals, const Parsed& args);
int RunExport(const CommandSpec& spec, Globals& globals, const Parsed& args);

// agent/cli_buffer.cpp.
int RunBufferStats(const CommandSpec& spec, Globals& globals, const Parsed& args);
int RunBufferCheck(const CommandSpec& spec, Globals& globals, const Parsed& args);

// agent/cli/cli_rules.cpp.
int RunRulesCheck(const CommandSpec& spec, Globals& globals, const Parsed& args);
int RunRulesList(const CommandSpec& spec, Globals& globals, const Parsed& args);
int RunRulesBacktest(const CommandSpec& spec, Globals& globals, const Parsed& args);

}  // namespace cli
}  // namespace sluice
