// `sluice rules check|list|backtest` (CONTRACT.md "sluice (CLI)").
#include "agent/cli/cli_commands.h"

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "agent/config/config.h"
#include "agent/payload/stored_reading.h"
#include "buffer/ring.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/units.h"
#include "rules/engine.h"
#include "rules/rule.h"

namespace sluice {
namespace {

int Check(const std::vector<std::string>& files) {
  auto set = rules::LoadRuleFiles(files);
  if (!set.ok()) {
    std::fprintf(stderr, "%s\n", set.status().message().c_str());
    return 2;
  }
  std::printf("ok\n");
  return 0;
}

int List(const cli::Globals& cli) {
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

int Backtest(const cli::Globals& cli, const std::vector<std::string>& files, int64_t since_us) {
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

namespace cli {

int RunRulesCheck(const CommandSpec&, Globals&, const Parsed& args) {
  return Check(args.positional);
}

int RunRulesList(const CommandSpec&, Globals& globals, const Parsed&) {
  return List(globals);
}

int RunRulesBacktest(const CommandSpec& spec, Globals& globals, const Parsed& args) {
  int64_t since_us = 0;
  if (args.Has("--since")) {
    auto d = ParseDuration(args.Get("--since"));
    if (!d.ok() || *d <= 0) {
      return UsageError(spec, "--since: bad duration \"" + args.Get("--since") + "\"");
    }
    since_us = *d;
  }
  return Backtest(globals, args.positional, since_us);
}

}  // namespace cli
}  // namespace sluice
