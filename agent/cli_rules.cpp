// `sluice rules check|list|backtest` (CONTRACT.md "sluice (CLI)").
#include "agent/cli_rules.h"

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "agent/config.h"
#include "agent/stored_reading.h"
#include "buffer/ring.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/units.h"
#include "rules/engine.h"
#include "rules/rule.h"

namespace sluice {
namespace {

constexpr const char* kRulesUsage =
    "usage: sluice [--config FILE | --data-dir DIR] rules COMMAND\n"
    "  rules check FILE...        validate rule files: \"ok\" (exit 0) or the errors\n"
    "                             FILE:LINE:COL: ... (exit 2)\n"
    "  rules list [--json]        the rules of the config's rules.files\n"
    "  rules backtest FILE... [--since D] [--json]\n"
    "                             run the rules over the readings stored in buffer.db\n"
    "                             (read-only, daemon running or not) and print each\n"
    "                             firing and resolved: time, rule, state, value\n";

int Usage(const std::string& why) {
  std::fprintf(stderr, "sluice: %s\n%s", why.c_str(), kRulesUsage);
  return 2;
}

int Check(const std::vector<std::string>& files) {
  if (files.empty()) return Usage("rules check: no FILE");
  auto set = rules::LoadRuleFiles(files);
  if (!set.ok()) {
    std::fprintf(stderr, "%s\n", set.status().message().c_str());
    return 2;
  }
  std::printf("ok\n");
  return 0;
}

int List(const RulesCli& cli) {
  auto cfg = LoadConfig(cli.config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
    return 2;
  }
  std::vector<std::string> warnings;
  auto set = rules::LoadRuleGlobs(cfg->rules.files, &warnings);
  for (const std::string& w : warnings) std::fprintf(stderr, "sluice: %s\n", w.c_str());
  if (!set.ok()) {
    std::fprintf(stderr, "%s\n", set.status().message().c_str());
    return 2;
  }
  for (const rules::RuleDef& r : set->rules) {
    if (cli.json) {
      std::printf("{\"name\":%s,\"severity\":%s,\"file\":%s,\"line\":%d,\"for_us\":%" PRId64
                  ",\"cooldown_us\":%" PRId64 ",\"message\":%s}\n",
                  JsonString(r.name).c_str(), JsonString(r.severity).c_str(), JsonString(r.file).c_str(), r.line,
                  r.for_us, r.cooldown_us, JsonString(r.message).c_str());
    } else {
      std::printf("%-24s %-8s for %-6s cooldown %-6s %s:%d\n", r.name.c_str(),
                  r.severity.c_str(), FormatDuration(r.for_us).c_str(),
                  FormatDuration(r.cooldown_us).c_str(), r.file.c_str(), r.line);
    }
  }
  if (!cli.json) {
    std::printf("%zu rules from %zu files\n", set->rules.size(), set->files.size());
  }
  return 0;
}

void PrintAlert(const Alert& a, bool json) {
  if (json) {
    std::printf("{\"ts_us\":%" PRId64 ",\"rule\":%s,\"state\":%s,\"severity\":%s,\"value\":%s,"
                "\"message\":%s}\n",
                a.ts_us, JsonString(a.rule).c_str(), JsonString(a.state).c_str(), JsonString(a.severity).c_str(),
                JsonDouble(a.value).c_str(), JsonString(a.message).c_str());
  } else {
    std::printf("%s  %-24s %-8s value %-10s %s\n", FormatUtc(a.ts_us, true).c_str(), a.rule.c_str(),
                a.state.c_str(), rules::FormatValue(a.value).c_str(), a.message.c_str());
  }
}

int Backtest(const RulesCli& cli, const std::vector<std::string>& files, int64_t since_us) {
  if (files.empty()) return Usage("rules backtest: no FILE");
  auto set = rules::LoadRuleFiles(files);
  if (!set.ok()) {
    std::fprintf(stderr, "%s\n", set.status().message().c_str());
    return 2;
  }
  rules::EngineOptions eo;
  std::string data_dir = cli.data_dir;
  if (data_dir.empty() || cli.config_given) {
    auto cfg = LoadConfig(cli.config_path);
    if (!cfg.ok()) {
      std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
      return 2;
    }
    if (data_dir.empty()) data_dir = cfg->agent.data_dir;
    eo.late_tolerance_us = cfg->rules.late_tolerance_us;
    eo.max_future_us = cfg->rules.max_future_us;
  }
  auto reader = RingReader::Open(data_dir);
  if (!reader.ok()) {
    std::fprintf(stderr, "sluice: %s\n", reader.status().message().c_str());
    return 1;
  }
  int64_t from_ts = since_us > 0 ? SystemClock::Get().NowWallUs() - since_us : INT64_MIN;
  FakeClock clock(0, 0);
  rules::Engine engine(clock, eo);
  std::vector<Alert> alerts;
  size_t nrules = set->rules.size();
  engine.Replace(std::move(*set), &alerts);
  alerts.clear();
  std::vector<StoredEvent> batch;
  uint64_t after = 0, readings = 0, fired = 0, resolved = 0;
  int64_t wall = INT64_MIN, next_tick = INT64_MIN;
  Reading r;
  auto flush = [&] {
    for (const Alert& a : alerts) {
      PrintAlert(a, cli.json);
      (a.state == "firing" ? fired : resolved)++;
    }
    alerts.clear();
  };
  for (;;) {
    batch.clear();
    Status st = (*reader)->ReadAfter(after, 4096, &batch);
    if (!st.ok()) {
      std::fprintf(stderr, "sluice: %s\n", st.message().c_str());
      return 1;
    }
    if (batch.empty()) break;
    for (const StoredEvent& e : batch) {
      after = e.seq;
      if (e.ts_us < from_ts || !DecodeStoredReading(e, &r)) continue;
      ++readings;
      if (r.ts_us > wall) {
        // The wall clock follows the data; absent() sees every crossed second.
        if (wall == INT64_MIN) {
          next_tick = r.ts_us + 1000000;
        } else if (r.ts_us - next_tick > 86400000000) {
          next_tick = r.ts_us - 86400000000;  // a day of ticks is plenty
        }
        while (next_tick <= r.ts_us) {
          clock.SetWall(next_tick);
          engine.Tick(&alerts);
          next_tick += 1000000;
        }
        wall = r.ts_us;
        clock.SetWall(wall);
      }
      engine.OnReading(r, &alerts);
      flush();
    }
  }
  flush();
  if (!cli.json) {
    rules::EngineStats s = engine.stats();
    std::printf("%" PRIu64 " readings, %zu rules: %" PRIu64 " fired, %" PRIu64
                " resolved; late %" PRIu64 ", unused %" PRIu64 ", still firing %zu\n",
                readings, nrules, fired, resolved, s.late, s.unused, s.firing);
  }
  return 0;
}

}  // namespace

int RunRulesCommand(const RulesCli& cli_in, const std::vector<std::string>& args) {
  if (args.empty()) return Usage("rules: no command");
  RulesCli cli = cli_in;
  const std::string& cmd = args[0];
  std::vector<std::string> files;
  int64_t since_us = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kRulesUsage, stdout);
      return 0;
    } else if (a == "--json") {
      cli.json = true;
    } else if ((a == "--data-dir" || a == "--config") && i + 1 < args.size()) {
      (a == "--config" ? cli.config_path : cli.data_dir) = args[++i];
      if (a == "--config") cli.config_given = true;
    } else if (a == "--since" && cmd == "backtest") {
      if (i + 1 >= args.size()) return Usage("--since needs a duration");
      auto d = ParseDuration(args[++i]);
      if (!d.ok() || *d <= 0) return Usage("--since: bad duration \"" + args[i] + "\"");
      since_us = *d;
    } else if (!a.empty() && a[0] == '-') {
      return Usage("rules " + cmd + ": unknown option \"" + a + "\"");
    } else {
      files.push_back(a);
    }
  }
  if (cmd == "check") return Check(files);
  if (cmd == "list") {
    if (!files.empty()) return Usage("rules list takes no FILE");
    return List(cli);
  }
  if (cmd == "backtest") return Backtest(cli, files, since_us);
  if (cmd == "--help" || cmd == "-h") {
    std::fputs(kRulesUsage, stdout);
    return 0;
  }
  return Usage("unknown command \"rules " + cmd + "\"");
}

}  // namespace sluice
