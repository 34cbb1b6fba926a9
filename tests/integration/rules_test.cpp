// Rules end to end with a real sluiced and a real Mosquitto (CONTRACT.md
// "Rule files", "Upstream payloads", "sluiced" SIGHUP): alerts fire and are
// committed while the link is cut and arrive afterwards, in order, once;
// reloads; restarts do not re-fire; --check; the CLI's rules commands.
#include <signal.h>
#include <sqlite3.h>  // test oracle: reads buffer.db read-only to check what is on disk
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/it_support.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace testing {
namespace {

const std::string kAlertTopic = std::string("sluice/") + kAgent + "/alerts/";

int ExitCode(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1000 - status; }

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* kHotRule =
    "[[rule]]\nname = \"hot\"\nwhen = \"avg(t, 2s) > 50\"\nclear = \"avg(t, 2s) < 40\"\n"
    "severity = \"critical\"\nmessage = \"hot at {value} C\"\nlabels = { site = \"plant-1\" }\n";
const char* kColdRule = "[[rule]]\nname = \"cold\"\nwhen = \"avg(t, 2s) < 0\"\n";

struct AlertRow {
  uint64_t seq;
  std::string rule;
};

// kind=1 rows of buffer.db, in seq order.
std::vector<AlertRow> AlertRows(const std::string& data_dir) {
  std::vector<AlertRow> rows;
  sqlite3* db = nullptr;
  std::string path = data_dir + "/buffer.db";
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return rows;
  }
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT seq, sensor FROM events WHERE kind = 1 ORDER BY seq", -1,
                         &st, nullptr) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      rows.push_back({static_cast<uint64_t>(sqlite3_column_int64(st, 0)),
                      reinterpret_cast<const char*>(sqlite3_column_text(st, 1))});
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

// Sends `n` readings of sensor t with `value`, 100 ms apart in event time
// starting at *ts (advanced).
void Push(const std::string& sock, double value, int n, int64_t* ts) {
  int fd = -1;
  WaitUntil([&] { return (fd = ConnectUnix(sock)) >= 0; }, 10000000, 20000);
  REQUIRE(fd >= 0);
  std::string lines;
  for (int i = 0; i < n; ++i) {
    lines += "t " + std::to_string(value) + " " + std::to_string(*ts) + "\n";
    *ts += 100000;
  }
  REQUIRE(SendAll(fd, lines));
  close(fd);
}

// Runs build/bin/sluice (next to sluiced) with `args`.
RunResult RunSluice(const std::vector<std::string>& args, const std::string& scratch_dir) {
  std::string bin = SluicedPath();
  return RunProgram(bin.substr(0, bin.find_last_of('/')) + "/sluice", args, scratch_dir);
}

struct Setup {
  TempDir dir;
  ConfigSpec spec;
  std::string sock, config, rules;
  explicit Setup(const std::string& upstream_url, const std::string& rule_text) {
    spec.data_dir = dir.Join("data");
    spec.control_socket = dir.Join("control.sock");
    sock = dir.Join("push.sock");
    spec.sensors = {PushSensor("ingest", "unix://" + sock)};
    spec.upstream_url = upstream_url;
    REQUIRE(mkdir(dir.Join("rules.d").c_str(), 0755) == 0);
    rules = dir.Join("rules.d/main.toml");
    REQUIRE(WriteFile(rules, rule_text));
    config = dir.Join("sluice.toml");
    REQUIRE(WriteFile(config, spec.ToToml() + "\n[rules]\nfiles = [\"" +
                                  dir.Join("rules.d/*.toml") + "\"]\nlate_tolerance = \"1s\"\n"));
  }
};

}  // namespace

TEST_CASE("rules: alerts fire and are committed while the link is cut, arrive after it returns",
          "[integration]") {
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  Setup s("mqtt://127.0.0.1:" + std::to_string(proxy.port()), kHotRule);
  Sluiced d(s.config, s.dir.Join("sluiced.log"));
  REQUIRE(d.Start(&err));
  int64_t ts = NowUs() - 60000000;  // stamped in the past: never ahead of the wall clock
  Push(s.sock, 20, 10, &ts);
  SeqTracker tr(std::string("sluice/") + kAgent + "/status");
  REQUIRE(sub.WaitFor([&](const std::vector<ReceivedMessage>& m) {
    tr.Feed(m);
    return tr.Distinct() >= 10;
  }, 15000000));

  proxy.Cut();
  SleepMs(500);
  ts += 5000000;  // the 2 s window then holds only the hot readings
  Push(s.sock, 60, 30, &ts);  // avg over 2 s crosses 50: fires
  std::vector<AlertRow> rows;
  REQUIRE(WaitUntil([&] { return !(rows = AlertRows(s.spec.data_dir)).empty(); }, 3000000, 10000));
  CHECK(rows[0].rule == "hot");
  Push(s.sock, 10, 30, &ts);  // avg falls below 40: resolves
  REQUIRE(WaitUntil([&] { return (rows = AlertRows(s.spec.data_dir)).size() >= 2; }, 3000000,
                    10000));
  CHECK(rows.size() == 2);
  CHECK(d.Log().find("rules: hot firing (critical, value 60): hot at 60 C") != std::string::npos);

  REQUIRE(proxy.Restore());
  const std::string topic = kAlertTopic + "hot";
  std::vector<ReceivedMessage> alerts;
  REQUIRE(sub.WaitFor([&](const std::vector<ReceivedMessage>& m) {
    alerts.clear();
    for (const auto& msg : m) {
      if (msg.topic == topic) alerts.push_back(msg);
    }
    return alerts.size() >= 2;
  }, 20000000));
  SleepMs(500);  // any duplicate would show up now
  alerts.clear();
  for (const auto& msg : sub.Messages()) {
    if (msg.topic == topic) alerts.push_back(msg);
  }
  REQUIRE(alerts.size() == 2);
  const std::string& firing = alerts[0].payload;
  INFO(firing);
  CHECK(firing.find(std::string("{\"agent\":\"") + kAgent + "\",\"seq\":" +
                    std::to_string(rows[0].seq) + ",\"rule\":\"hot\",\"state\":\"firing\","
                    "\"severity\":\"critical\",\"ts_us\":") == 0);
  CHECK(firing.find(",\"value\":60,\"message\":\"hot at 60 C\",\"labels\":{\"site\":\"plant-1\"}}") !=
        std::string::npos);
  INFO(alerts[1].payload);
  CHECK(alerts[1].payload.find("\"seq\":" + std::to_string(rows[1].seq) +
                               ",\"rule\":\"hot\",\"state\":\"resolved\"") != std::string::npos);
  // Every committed seq arrived, readings and alerts alike, in order.
  DbSnapshot db = ReadBufferDb(s.spec.data_dir);
  REQUIRE(db.ok);
  CHECK(tr.WaitCovers(sub, 1, db.max_seq, 15000000));
  CHECK(tr.out_of_order() == 0);
  CHECK(ExitCode(d.Terminate()) == 0);
}

TEST_CASE("rules: SIGHUP keeps the old rules on a bad file, swaps on a good one; restart does "
          "not re-fire; --check; rules check, list, backtest", "[integration]") {
  Setup s("", kHotRule);
  Sluiced d(s.config, s.dir.Join("sluiced.log"));
  std::string err;
  REQUIRE(d.Start(&err));
  int64_t ts = NowUs() - 60000000;  // stamped in the past: never ahead of the wall clock
  Push(s.sock, 60, 30, &ts);
  REQUIRE(WaitUntil([&] { return CountOf(d.Log(), "rules: hot firing") == 1; }, 5000000, 10000));

  // A bad file: rejected with FILE:LINE:COL, the old rule keeps running.
  REQUIRE(WriteFile(s.rules, std::string(kHotRule) + "[[rule]]\nname = \"b\"\nwhen = \"avg(t, 2s) >\"\n"));
  REQUIRE(kill(d.pid(), SIGHUP) == 0);
  REQUIRE(WaitUntil([&] { return d.Log().find("reload rejected") != std::string::npos; }, 5000000,
                    10000));
  REQUIRE(WaitUntil([&] { return d.Log().find(s.rules + ":10:") != std::string::npos; }, 2000000,
                    10000));
  Push(s.sock, 10, 30, &ts);
  REQUIRE(WaitUntil([&] { return CountOf(d.Log(), "rules: hot resolved") == 1; }, 5000000, 10000));

  // A good file: hot kept (its state too), cold added.
  REQUIRE(WriteFile(s.rules, std::string(kHotRule) + kColdRule));
  REQUIRE(kill(d.pid(), SIGHUP) == 0);
  REQUIRE(WaitUntil([&] {
    return d.Log().find("reloaded 2 rules from 1 files: kept 1, added 1, removed 0") !=
           std::string::npos;
  }, 5000000, 10000));
  Push(s.sock, -5, 30, &ts);
  REQUIRE(WaitUntil([&] { return CountOf(d.Log(), "rules: cold firing") == 1; }, 5000000, 10000));

  // Restart while cold is firing: the window is refilled and the state
  // restored, so more cold readings do not fire it again.
  CHECK(ExitCode(d.Terminate()) == 0);
  REQUIRE(d.Start(&err));
  CHECK(d.Log().find("restored the state of 2 of 2 rules") != std::string::npos);
  Push(s.sock, -6, 20, &ts);
  SleepMs(800);
  CHECK(CountOf(d.Log(), "rules: cold firing") == 1);
  Push(s.sock, 20, 30, &ts);
  REQUIRE(WaitUntil([&] { return CountOf(d.Log(), "rules: cold resolved") == 1; }, 5000000, 10000));
  // Backtest over the stored readings while the daemon runs: the same
  // episodes as live.
  const std::string bt = s.dir.Join("backtest.toml");
  REQUIRE(WriteFile(bt, std::string(kHotRule) + kColdRule));
  RunResult b = RunSluice({"--data-dir", s.spec.data_dir, "rules", "backtest", bt, "--json"},
                          s.dir.path());
  INFO(b.err);
  CHECK(ExitCode(b.status) == 0);
  CHECK(CountOf(b.out, "\n") == 4);
  CHECK(b.out.find("{\"ts_us\":") == 0);
  CHECK(b.out.find("\"rule\":\"hot\",\"state\":\"firing\",\"severity\":\"critical\","
                   "\"value\":60,\"message\":\"hot at 60 C\"}") != std::string::npos);
  CHECK(CountOf(b.out, "\"rule\":\"cold\",\"state\":\"firing\"") == 1);
  CHECK(CountOf(b.out, "\"rule\":\"cold\",\"state\":\"resolved\"") == 1);
  CHECK(ExitCode(d.Terminate()) == 0);
  // ... and with it stopped, as text.
  b = RunSluice({"--data-dir", s.spec.data_dir, "rules", "backtest", bt, "--since", "1h"},
                s.dir.path());
  CHECK(ExitCode(b.status) == 0);
  CHECK(CountOf(b.out, " firing   value ") == 2);
  CHECK(b.out.find("2 fired, 2 resolved") != std::string::npos);
  std::vector<AlertRow> rows = AlertRows(s.spec.data_dir);
  REQUIRE(rows.size() == 4);  // hot firing, hot resolved, cold firing, cold resolved
  CHECK(rows[2].rule == "cold");
  CHECK(rows[3].rule == "cold");

  // sluice rules check / list.
  RunResult c = RunSluice({"rules", "check", s.rules}, s.dir.path());
  CHECK(ExitCode(c.status) == 0);
  CHECK(c.out == "ok\n");
  c = RunSluice({"--config", s.config, "rules", "list"}, s.dir.path());
  CHECK(ExitCode(c.status) == 0);
  CHECK(c.out.find("2 rules from 1 files") != std::string::npos);
  CHECK(ExitCode(RunSluice({"rules", "bogus"}, s.dir.path()).status) == 2);

  // --check with a bad rule file: exit 2, FILE:LINE:COL.
  REQUIRE(WriteFile(s.rules, "[[rule]]\nname = \"x\"\nwhen = \"nosuch(t, 1s) > 1\"\n"));
  c = RunSluice({"rules", "check", s.rules}, s.dir.path());
  CHECK(ExitCode(c.status) == 2);
  CHECK(c.err.find(s.rules + ":3:") != std::string::npos);
  RunResult r = RunSluiced({"--config", s.config, "--check"}, s.dir.path());
  INFO(r.err);
  CHECK(ExitCode(r.status) == 2);
  CHECK(r.err.find(s.rules + ":3:") != std::string::npos);
  CHECK(r.out.find("ok") == std::string::npos);
  // ... and at start.
  r = RunSluiced({"--config", s.config}, s.dir.path());
  CHECK(ExitCode(r.status) == 2);
  CHECK(r.err.find(s.rules + ":3:") != std::string::npos);
}

TEST_CASE("rules: one reading stamped a day ahead does not blind the rule; status shows it held",
          "[integration]") {
  Setup s("", kHotRule);
  Sluiced d(s.config, s.dir.Join("sluiced.log"));
  std::string err;
  REQUIRE(d.Start(&err));
  // One line from a source whose clock is 23 h ahead (inside max_future),
  // then readings stamped over the last 3 s, on the same connection.
  std::string lines = "t 1 " + std::to_string(NowUs() + 23 * 3600 * int64_t{1000000}) + "\n";
  int64_t ts = NowUs() - 3000000;
  for (int i = 0; i < 30; ++i, ts += 100000) lines += "t 60 " + std::to_string(ts) + "\n";
  int fd = -1;
  WaitUntil([&] { return (fd = ConnectUnix(s.sock)) >= 0; }, 10000000, 20000);
  REQUIRE(fd >= 0);
  REQUIRE(SendAll(fd, lines));
  close(fd);
  REQUIRE(WaitUntil([&] { return CountOf(d.Log(), "rules: hot firing") == 1; }, 5000000, 10000));
  // The rules publish their counters just after logging the alert.
  RunResult st;
  CHECK(WaitUntil([&] {
    st = RunSluice({"--config", s.config, "status", "--json"}, s.dir.path());
    return st.out.find("\"accepted\":30,\"late\":0,\"future\":0,\"ahead\":1,"
                       "\"ahead_dropped\":0,\"held\":1") != std::string::npos;
  }, 5000000, 50000));
  INFO(st.out);
  st = RunSluice({"--config", s.config, "status"}, s.dir.path());
  INFO(st.out);
  CHECK(st.out.find("ahead of the clock 1 (waiting 1, dropped 0)") != std::string::npos);
  CHECK(ExitCode(d.Terminate()) == 0);
}

// A 100 KB table header of 50,000 dotted segments: toml++ overflowed its
// stack on it (exit 139, and a SIGHUP killed the daemon).
std::string DeepToml() {
  std::string header = "x";
  for (int i = 1; i < 50000; ++i) header += ".x";
  return "[" + header + "]\na = 1\n";
}

TEST_CASE("rules: a deeply nested TOML file is an error (exit 2) in --check, rules check and "
          "status; on SIGHUP the old rules stay", "[integration]") {
  Setup s("", kHotRule);
  Sluiced d(s.config, s.dir.Join("sluiced.log"));
  std::string err;
  bool started = d.Start(&err);
  INFO(err);
  REQUIRE(started);
  const std::string deep = s.dir.Join("rules.d/deep.toml");
  REQUIRE(WriteFile(deep, DeepToml()));
  REQUIRE(kill(d.pid(), SIGHUP) == 0);
  REQUIRE(WaitUntil([&] { return d.Log().find("reload rejected") != std::string::npos; }, 5000000,
                    10000));
  REQUIRE(WaitUntil([&] { return d.Log().find(deep + ":1:130: nested too deep") != std::string::npos; },
                    2000000, 10000));
  SleepMs(200);
  REQUIRE(d.Alive());
  // The old rule still runs.
  int64_t ts = NowUs();
  Push(s.sock, 60, 30, &ts);
  REQUIRE(WaitUntil([&] { return CountOf(d.Log(), "rules: hot firing") == 1; }, 5000000, 10000));

  RunResult c = RunSluice({"rules", "check", deep}, s.dir.path());
  INFO(c.err);
  CHECK(ExitCode(c.status) == 2);
  CHECK(c.err.rfind(deep + ":1:130: nested too deep", 0) == 0);
  RunResult r = RunSluiced({"--config", s.config, "--check"}, s.dir.path());
  INFO(r.err);
  CHECK(ExitCode(r.status) == 2);
  CHECK(r.err.find(deep + ":1:130: nested too deep") != std::string::npos);
  CHECK(ExitCode(d.Terminate()) == 0);

  // The same in the config file itself.
  const std::string bad_config = s.dir.Join("deep-config.toml");
  REQUIRE(WriteFile(bad_config, DeepToml()));
  r = RunSluiced({"--config", bad_config, "--check"}, s.dir.path());
  INFO(r.err);
  CHECK(ExitCode(r.status) == 2);
  CHECK(r.err.rfind(bad_config + ":1:130: nested too deep", 0) == 0);
  c = RunSluice({"--config", bad_config, "status"}, s.dir.path());
  INFO(c.err);
  CHECK(ExitCode(c.status) == 2);
  CHECK(c.err.find(bad_config + ":1:130: nested too deep") != std::string::npos);
}

}  // namespace testing
}  // namespace sluice
