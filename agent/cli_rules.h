// `sluice rules ...`: check, list, backtest (CONTRACT.md "sluice (CLI)").
#pragma once

#include <string>
#include <vector>

namespace sluice {

struct RulesCli {
  std::string config_path;    // --config, or the default
  bool config_given = false;  // --config was on the command line
  std::string data_dir;       // --data-dir (empty: the config's)
  bool json = false;
};

// `args` = the words after "rules" (options included). Returns the exit
// status: 0 ok, 1 buffer.db unreadable, 2 bad usage or invalid rule files.
int RunRulesCommand(const RulesCli& cli, const std::vector<std::string>& args);

}  // namespace sluice
