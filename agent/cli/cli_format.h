// Shared pieces of the history commands: opening buffer.db for a command,
// --since/--until/--sensor into a HistoryFilter, and one event as a human
// line, a JSON line (the uplink payload's fields) or a CSV row.
// Single-threaded.
#pragma once

#include <memory>
#include <string>

#include "agent/cli/cli.h"
#include "buffer/history.h"

namespace sluice {
namespace cli {

// Fills filter->since_us/until_us (--since, --until) and sensor_globs
// (--sensor) from whichever of those options the command has. Returns -1,
// or exit status 2 after a usage error.
int ParseFilterArgs(const CommandSpec& spec, const Parsed& args, HistoryFilter* filter);

// An open buffer.db for one history command.
struct HistorySession {
  HistoryFilter filter;  // set readings/alerts before OpenSession
  std::unique_ptr<HistoryReader> db;
  std::string agent;   // the config's agent.id, or ""
  HistoryRange range;  // when the command started
};

// Parses the filter options into s->filter, resolves the data dir, opens
// buffer.db with `adjust(filter)` applied to what the database is asked
// for (nullptr: s->filter as is), reads the range, ignores SIGPIPE and turns
// SIGINT/SIGTERM into StopRequested(). Returns -1, or the exit status after
// printing why (2: usage or config error, 1: buffer.db unreadable).
int OpenSession(const CommandSpec& spec, const Globals& globals, const Parsed& args,
                HistorySession* s, void (*adjust)(HistoryFilter*) = nullptr);

// Resolves the data dir; prints the config error and returns 2, or -1.
int DataDirOrExit(const Globals& globals, std::string* data_dir);

// "sluice: note: TEXT" on stderr (nothing for an empty text).
void Note(const std::string& text);

// 2026-11-25T16:12:42.913Z  seq 42  boiler.temp  21.5 C      (readings)
// 2026-11-25T16:12:43.000Z  seq 43  ALERT hot firing critical value 86.2  message
std::string HumanLine(const StoredEvent& e);
// The uplink's JSON document (agent/payload/payload.h) plus "\n"; without "agent"
// when `agent` is empty (no config read). "" for a corrupt body.
std::string JsonLine(const std::string& agent, const StoredEvent& e);

extern const char* const kCsvHeader;
// One CSV row (RFC 4180 quoting) plus "\n"; "" for a corrupt body.
std::string CsvRow(const StoredEvent& e);

// A number for people: up to 10 significant digits; "nan"/"inf" when not finite.
std::string HumanNumber(double v);

}  // namespace cli
}  // namespace sluice
