// sluice: the operator's command-line tool. History commands read
// buffer.db read-only and work whether or not the daemon runs.
//
// Implemented so far: `buffer stats`, `rules check|list|backtest`
// (agent/cli_rules.cpp). The live commands (status, tail, alerts, export,
// metrics) land with the CLI issue.
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "agent/cli_live.h"
#include "agent/cli_rules.h"
#include "agent/config.h"
#include "common/json.h"
#include "common/units.h"

namespace {

constexpr const char* kUsage =
    "usage: sluice [--config FILE | --data-dir DIR] COMMAND [--json]\n"
    "commands:\n"
    "  buffer stats   events, bytes, seq range, evictions and upstream cursors\n"
    "                 of buffer.db (read-only; works with the daemon stopped)\n"
    "  rules check FILE...                    validate rule files\n"
    "  rules list                             the rules of the config's rules.files\n"
    "  rules backtest FILE... [--since D]     run rules over buffer.db's readings\n"
    "                 (`sluice rules --help` for details)\n";

int UsageError(const std::string& why) {
  std::fprintf(stderr, "sluice: %s\n%s", why.c_str(), kUsage);
  return 2;
}

std::string TimeOrDash(int64_t ts_us) {
  return ts_us == 0 ? "-" : sluice::FormatUtc(ts_us, false);
}

struct Cursor {
  std::string upstream;
  int64_t acked_seq = 0;
  int64_t evicted_unsent = 0;
};

struct BufferStats {
  std::string path;
  int64_t file_bytes = 0;
  int64_t wal_bytes = 0;
  int64_t schema_version = 0;
  int64_t events = 0;
  int64_t bytes = 0;
  int64_t first_seq = 0, last_seq = 0;
  int64_t first_ts = 0, last_ts = 0;
  int64_t next_seq = 1;
  std::map<std::string, int64_t> counters;
  std::vector<Cursor> cursors;
};

// Runs `sql` and calls `row` for each result row. Returns false (with
// *error) on failure.
template <typename Fn>
bool Query(sqlite3* db, const char* sql, std::string* error, Fn row) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    *error = sqlite3_errmsg(db);
    return false;
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) row(st);
  bool ok = rc == SQLITE_DONE;
  if (!ok) *error = sqlite3_errmsg(db);
  sqlite3_finalize(st);
  return ok;
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

bool ReadStats(const std::string& data_dir, BufferStats* s, std::string* error) {
  s->path = data_dir + "/buffer.db";
  struct stat st;
  if (stat(s->path.c_str(), &st) != 0) {
    *error = s->path + ": " + std::strerror(errno);
    return false;
  }
  s->file_bytes = st.st_size;
  s->wal_bytes = FileSize(s->path + "-wal");
  sqlite3* db = nullptr;
  // Read-only, but not immutable: a running daemon's WAL is honoured.
  int rc = sqlite3_open_v2(s->path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    *error = s->path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return false;
  }
  sqlite3_busy_timeout(db, 2000);
  bool ok =
      Query(db, "PRAGMA user_version", error,
            [&](sqlite3_stmt* q) { s->schema_version = sqlite3_column_int64(q, 0); }) &&
      Query(db, "BEGIN", error, [](sqlite3_stmt*) {}) &&
      Query(db, "SELECT key, value FROM meta", error,
            [&](sqlite3_stmt* q) {
              std::string k = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
              int64_t v = sqlite3_column_int64(q, 1);
              if (k == "row_count") s->events = v;
              else if (k == "row_bytes") s->bytes = v;
              else if (k == "next_seq") s->next_seq = v;
            }) &&
      Query(db, "SELECT min(seq), max(seq) FROM events", error,
            [&](sqlite3_stmt* q) {
              s->first_seq = sqlite3_column_int64(q, 0);
              s->last_seq = sqlite3_column_int64(q, 1);
            }) &&
      Query(db, "SELECT (SELECT ts_us FROM events ORDER BY seq LIMIT 1),"
                " (SELECT ts_us FROM events ORDER BY seq DESC LIMIT 1)",
            error,
            [&](sqlite3_stmt* q) {
              s->first_ts = sqlite3_column_int64(q, 0);
              s->last_ts = sqlite3_column_int64(q, 1);
            }) &&
      Query(db, "SELECT name, value FROM counters", error,
            [&](sqlite3_stmt* q) {
              s->counters[reinterpret_cast<const char*>(sqlite3_column_text(q, 0))] =
                  sqlite3_column_int64(q, 1);
            }) &&
      Query(db, "SELECT upstream, acked_seq, evicted_unsent FROM cursors ORDER BY upstream",
            error, [&](sqlite3_stmt* q) {
              s->cursors.push_back({reinterpret_cast<const char*>(sqlite3_column_text(q, 0)),
                                    sqlite3_column_int64(q, 1), sqlite3_column_int64(q, 2)});
            });
  if (!ok) *error = s->path + ": " + *error;
  sqlite3_close(db);
  return ok;
}

void PrintStats(const BufferStats& s, bool json) {
  // The last committed seq is next_seq - 1 even when eviction emptied the ring.
  int64_t last_committed = s.next_seq - 1;
  auto counter = [&](const char* name) {
    auto it = s.counters.find(name);
    return it == s.counters.end() ? int64_t{0} : it->second;
  };
  if (json) {
    std::printf("{\"path\":%s,\"schema_version\":%lld,\"file_bytes\":%lld,\"wal_bytes\":%lld,"
                "\"events\":%lld,\"bytes\":%lld,\"first_seq\":%lld,\"last_seq\":%lld,"
                "\"last_committed_seq\":%lld,\"first_ts_us\":%lld,\"last_ts_us\":%lld,"
                "\"evicted_total\":%lld,\"evicted_full\":%lld,\"full_events\":%lld,"
                "\"corrupt_recoveries\":%lld,\"upstreams\":[",
                sluice::JsonString(s.path).c_str(), (long long)s.schema_version, (long long)s.file_bytes,
                (long long)s.wal_bytes, (long long)s.events, (long long)s.bytes,
                (long long)s.first_seq, (long long)s.last_seq, (long long)last_committed,
                (long long)s.first_ts, (long long)s.last_ts, (long long)counter("evicted_total"),
                (long long)counter("evicted_full"), (long long)counter("full_events"),
                (long long)counter("corrupt_recoveries"));
    for (size_t i = 0; i < s.cursors.size(); ++i) {
      const Cursor& c = s.cursors[i];
      std::printf("%s{\"name\":%s,\"acked_seq\":%lld,\"backlog\":%lld,\"evicted_unsent\":%lld}",
                  i ? "," : "", sluice::JsonString(c.upstream).c_str(), (long long)c.acked_seq,
                  (long long)std::max<int64_t>(0, last_committed - c.acked_seq),
                  (long long)c.evicted_unsent);
    }
    std::printf("]}\n");
    return;
  }
  std::printf("buffer      %s (schema v%lld)\n", s.path.c_str(), (long long)s.schema_version);
  std::printf("file        %.1f MiB (+ %.1f MiB WAL)\n", s.file_bytes / 1048576.0,
              s.wal_bytes / 1048576.0);
  std::printf("events      %lld (%.1f MiB accounted)\n", (long long)s.events, s.bytes / 1048576.0);
  std::printf("seq         %lld .. %lld (last committed %lld)\n", (long long)s.first_seq,
              (long long)s.last_seq, (long long)last_committed);
  std::printf("time        %s .. %s\n", TimeOrDash(s.first_ts).c_str(), TimeOrDash(s.last_ts).c_str());
  std::printf("evicted     %lld (%lld for a full disk)\n", (long long)counter("evicted_total"),
              (long long)counter("evicted_full"));
  std::printf("full disk   %lld times\n", (long long)counter("full_events"));
  std::printf("corrupt     %lld databases quarantined\n", (long long)counter("corrupt_recoveries"));
  for (const Cursor& c : s.cursors) {
    std::printf("upstream    %-16s acked %lld, backlog %lld, evicted before sending %lld\n",
                c.upstream.c_str(), (long long)c.acked_seq,
                (long long)std::max<int64_t>(0, last_committed - c.acked_seq),
                (long long)c.evicted_unsent);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path, data_dir, socket_path;
  bool json = false;
  bool config_given = false;
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "rules" && words.empty()) {
      sluice::RulesCli cli;
      cli.config_path = config_path.empty() ? "/etc/sluice/sluice.toml" : config_path;
      cli.config_given = config_given;
      cli.data_dir = data_dir;
      cli.json = json;
      return sluice::RunRulesCommand(cli, std::vector<std::string>(argv + i + 1, argv + argc));
    }
    if ((a == "status" || a == "metrics") && words.empty()) {
      sluice::LiveCli live{config_path, config_given, socket_path, json};
      return sluice::RunLiveCommand(live, a, std::vector<std::string>(argv + i + 1, argv + argc));
    }
    if ((a == "--config" || a == "--data-dir" || a == "--socket") && i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--config") config_path = v, config_given = true;
      else if (a == "--data-dir") data_dir = v;
      else socket_path = v;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("sluice %s\n", SLUICE_VERSION);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      return UsageError("unknown option \"" + a + "\"");
    } else {
      words.push_back(a);
    }
  }
  if (words.empty()) return UsageError("no command");
  if (!(words.size() == 2 && words[0] == "buffer" && words[1] == "stats")) {
    std::string cmd;
    for (const auto& w : words) cmd += (cmd.empty() ? "" : " ") + w;
    return UsageError("unknown command \"" + cmd + "\"");
  }
  if (data_dir.empty()) {
    if (config_path.empty()) config_path = "/etc/sluice/sluice.toml";
    auto cfg = sluice::LoadConfig(config_path);
    if (!cfg.ok()) {
      std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
      return 2;
    }
    data_dir = cfg->agent.data_dir;
  }
  BufferStats s;
  std::string error;
  if (!ReadStats(data_dir, &s, &error)) {
    std::fprintf(stderr, "sluice: %s\n", error.c_str());
    return 1;
  }
  PrintStats(s, json);
  return 0;
}
