// `sluice status` and `sluice metrics`: the live commands, answered by the
// running sluiced over its control socket (agent/control/control_server.h).
// Exit status: 0 ok, 1 sluiced unreachable (not running, no permission,
// no answer), 2 bad usage or an unreadable config.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/json_parse.h"

namespace sluice {

struct LiveCli {
  std::string config_path;    // --config, or the default
  bool config_given = false;  // --config was on the command line
  std::string socket_path;    // --socket (empty: the config's agent.control_socket)
  bool json = false;          // --json before the command
};

// `command` is "status" or "metrics" (options already parsed by the
// command table in sluice_main.cpp); `watch`: status --watch.
int RunLiveCommand(const LiveCli& cli, const std::string& command, bool watch);

// The human layout of a status response (80 columns). `progress`: draw a
// progress bar and ETA under each draining upstream; `peak_backlog` holds
// the largest backlog seen per upstream (the bar's 0 %), updated here.
std::string RenderStatus(const JsonValue& status, bool progress,
                         std::map<std::string, double>* peak_backlog);

}  // namespace sluice
