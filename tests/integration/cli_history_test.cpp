// The `sluice` history commands (CONTRACT.md "sluice (CLI)") against a real
// sluiced's buffer.db, daemon running and stopped: tail, alerts, export,
// buffer check; --follow; evicted ranges; --help and usage errors.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/units.h"
#include "tests/integration/cli_test_util.h"

namespace sluice {
namespace testing {
namespace {

const char* kHotRule =
    "[[rule]]\nname = \"hot\"\nwhen = \"avg(t, 2s) > 50\"\nclear = \"avg(t, 2s) < 40\"\n"
    "severity = \"critical\"\nmessage = \"hot at {value} C\"\nlabels = { site = \"plant-1\" }\n";

int64_t WallUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void PushLines(const std::string& sock, const std::string& lines) {
  int fd = -1;
  WaitUntil([&] { return (fd = ConnectUnix(sock)) >= 0; }, 10000000, 20000);
  REQUIRE(fd >= 0);
  REQUIRE(SendAll(fd, lines));
  close(fd);
}

// Known readings: boiler.temp, boiler.pressure, pump.rpm once a second from
// t0 (30 each), then sensor t driving rule "hot": fire, resolve, fire.
struct Data {
  int64_t t0 = 0;
  std::map<std::string, std::map<int64_t, double>> value;  // sensor -> ts -> value
  size_t readings = 0;
};

Data PushKnownData(const std::string& sock) {
  Data d;
  d.t0 = (WallUs() / 1000000 - 3600) * 1000000;  // an hour ago, whole second
  std::string lines;
  auto add = [&](const std::string& sensor, double v, int64_t ts) {
    d.value[sensor][ts] = v;
    lines += sensor + " " + JsonDouble(v) + " " + std::to_string(ts) + "\n";
    ++d.readings;
  };
  for (int i = 0; i < 30; ++i) {
    add("boiler.temp", 20 + i * 0.5, d.t0 + i * 1000000);
    add("boiler.pressure", 1 + i / 100.0, d.t0 + i * 1000000 + 100000);
    add("pump.rpm", i * 10, d.t0 + i * 1000000 + 200000);
  }
  const double t_values[] = {10, 60, 10, 60};
  int64_t ts = d.t0 + 40000000;
  for (double v : t_values) {
    for (int k = 0; k < 20; ++k, ts += 100000) add("t", v, ts);
  }
  PushLines(sock, lines);
  return d;
}

// Every history command, checked field by field against buffer.db itself.
void CheckHistory(const Gateway& gw, const DbSnapshot& snap, const Data& d) {
  const std::string scratch = gw.dir.path();
  const std::vector<std::string> cfg = {"--config", gw.config};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), cfg.begin(), cfg.end());
    return RunCli(args, scratch);
  };
  auto check_event = [&](const JsonValue& v) {
    uint64_t seq = static_cast<uint64_t>(Num(v, "seq"));
    INFO("seq " << seq);
    REQUIRE(snap.events.count(seq) == 1);
    const DbRow& row = snap.events.at(seq);
    CHECK(Str(v, "agent") == kAgent);
    CHECK(static_cast<int64_t>(Num(v, "ts_us")) == row.ts_us);
    if (v.Find("rule") != nullptr) {
      CHECK(Str(v, "rule") == row.sensor);
      CHECK(Str(v, "severity") == "critical");
      CHECK(v.AtPath("$.labels.site") != nullptr);
    } else {
      CHECK(Str(v, "sensor") == row.sensor);
      CHECK(Str(v, "quality") == "good");
      CHECK(Num(v, "value") == d.value.at(row.sensor).at(row.ts_us));
    }
  };

  // tail -n 5 --json: the five newest events, oldest first.
  CliRun r = with({"tail", "-n", "5", "--json"});
  REQUIRE(r.code == 0);
  bool ok = false;
  auto objs = ParseJsonLines(r.out, &ok);
  REQUIRE(ok);
  REQUIRE(objs.size() == 5);
  auto it = snap.events.rbegin();
  for (int i = 4; i >= 0; --i, ++it) {
    CHECK(static_cast<uint64_t>(Num(objs[static_cast<size_t>(i)], "seq")) == it->first);
    check_event(objs[static_cast<size_t>(i)]);
  }

  // tail --sensor GLOB, human lines, by --data-dir (no config read).
  r = RunCli({"--data-dir", gw.spec.data_dir, "tail", "-n", "4", "--sensor", "boiler.*"}, scratch);
  REQUIRE(r.code == 0);
  auto lines = Lines(r.out);
  REQUIRE(lines.size() == 4);
  std::vector<uint64_t> boiler;
  for (const auto& kv : snap.events) {
    if (kv.second.sensor.rfind("boiler.", 0) == 0) boiler.push_back(kv.first);
  }
  for (size_t i = 0; i < 4; ++i) {
    uint64_t seq = boiler[boiler.size() - 4 + i];
    const DbRow& row = snap.events.at(seq);
    INFO(lines[i]);
    CHECK(lines[i].rfind(FormatUtc(row.ts_us, true) + "  seq " + std::to_string(seq) + " ", 0) ==
          0);
    CHECK(lines[i].find(" " + row.sensor + " ") != std::string::npos);
    CHECK(lines[i].find(" " + JsonDouble(d.value.at(row.sensor).at(row.ts_us))) !=
          std::string::npos);
  }

  // export (CSV): every event, header, field by field.
  r = with({"export"});
  REQUIRE(r.code == 0);
  CHECK(r.err.empty());  // no progress: stderr is not a terminal
  auto csv = ParseCsv(r.out, &ok);
  REQUIRE(ok);
  REQUIRE(csv.size() == snap.rows + 1);
  CHECK(csv[0] == std::vector<std::string>{"seq", "time", "ts_us", "kind", "sensor", "value",
                                           "unit", "quality", "rule", "state", "severity",
                                           "message", "labels"});
  size_t alerts = 0;
  uint64_t prev = 0;
  for (size_t i = 1; i < csv.size(); ++i) {
    const auto& f = csv[i];
    REQUIRE(f.size() == 13);
    uint64_t seq = std::stoull(f[0]);
    INFO("csv row " << i << " seq " << seq);
    REQUIRE(snap.events.count(seq) == 1);
    CHECK(seq > prev);
    prev = seq;
    const DbRow& row = snap.events.at(seq);
    CHECK(std::stoll(f[2]) == row.ts_us);
    CHECK(f[1] == FormatUtc(row.ts_us, true));
    if (f[3] == "alert") {
      ++alerts;
      CHECK(f[8] == row.sensor);
      CHECK((f[9] == "firing" || f[9] == "resolved"));
      CHECK(f[10] == "critical");
      CHECK(f[11] == "hot at " + f[5] + " C");
      CHECK(f[12] == "site=plant-1");
    } else {
      CHECK(f[3] == "reading");
      CHECK(f[4] == row.sensor);
      CHECK(std::stod(f[5]) == d.value.at(row.sensor).at(row.ts_us));
      CHECK(f[7] == "good");
    }
  }
  CHECK(alerts == 3);

  // export --format jsonl with two globs: only those sensors, seq order.
  r = with({"export", "--format", "jsonl", "--sensor", "pump.*", "--sensor", "boiler.pres?ure"});
  REQUIRE(r.code == 0);
  objs = ParseJsonLines(r.out, &ok);
  REQUIRE(ok);
  CHECK(objs.size() == 60);
  prev = 0;
  for (const JsonValue& v : objs) {
    check_event(v);
    CHECK((Str(v, "sensor") == "pump.rpm" || Str(v, "sensor") == "boiler.pressure"));
    CHECK(static_cast<uint64_t>(Num(v, "seq")) > prev);
    prev = static_cast<uint64_t>(Num(v, "seq"));
  }

  // --since inclusive, --until exclusive, both as RFC 3339 times.
  r = with({"--json", "export", "--sensor", "boiler.temp", "--since",
            FormatUtc(d.t0 + 10000000, false), "--until", FormatUtc(d.t0 + 20000000, true)});
  REQUIRE(r.code == 0);
  objs = ParseJsonLines(r.out, &ok);
  REQUIRE(ok);
  REQUIRE(objs.size() == 10);
  CHECK(static_cast<int64_t>(Num(objs.front(), "ts_us")) == d.t0 + 10000000);
  CHECK(static_cast<int64_t>(Num(objs.back(), "ts_us")) == d.t0 + 19000000);
  // A duration back from now: everything pushed is an hour old.
  r = with({"export", "--since", "30m"});
  CHECK(r.code == 0);
  CHECK(Lines(r.out).size() == 1);  // the header only

  // alerts: firing, resolved, firing; --active: the last one.
  r = with({"alerts", "--json"});
  REQUIRE(r.code == 0);
  objs = ParseJsonLines(r.out, &ok);
  REQUIRE(ok);
  REQUIRE(objs.size() == 3);
  const char* states[] = {"firing", "resolved", "firing"};
  for (size_t i = 0; i < 3; ++i) {
    check_event(objs[i]);
    CHECK(Str(objs[i], "rule") == "hot");
    CHECK(Str(objs[i], "state") == states[i]);
    CHECK(objs[i].AtPath("$.labels.site")->AsString() == "plant-1");
  }
  r = with({"alerts", "--active", "--json"});
  REQUIRE(r.code == 0);
  auto active = ParseJsonLines(r.out, &ok);
  REQUIRE(active.size() == 1);
  CHECK(Num(active[0], "seq") == Num(objs[2], "seq"));
  r = with({"alerts", "--active"});
  CHECK(r.out.find("ALERT hot") != std::string::npos);
  CHECK(r.out.find(" firing ") != std::string::npos);
  r = with({"alerts", "--since", "10m"});
  CHECK(r.code == 0);
  CHECK(r.out == "no alerts\n");
  r = with({"alerts", "--since", "2h", "--json"});
  CHECK(Lines(r.out).size() == 3);

  // buffer check: fine; --json agrees with the database.
  r = with({"buffer", "check"});
  CHECK(r.code == 0);
  CHECK(r.out.find("buffer.db: ok") != std::string::npos);
  r = with({"buffer", "check", "--json"});
  CHECK(r.code == 0);
  auto check = ParseJson(r.out);
  REQUIRE(check.ok());
  CHECK(check->Find("ok")->AsBool());
  CHECK(static_cast<uint64_t>(Num(*check, "events")) == snap.rows);
  CHECK(with({"buffer", "stats"}).code == 0);
}

TEST_CASE("history commands read a running and a stopped daemon's buffer.db", "[cli]") {
  Gateway gw(kHotRule);
  Sluiced daemon(gw.config, gw.dir.Join("sluiced.log"));
  std::string error;
  REQUIRE(daemon.Start(&error));
  Data d = PushKnownData(gw.push_sock);
  const uint64_t expected = d.readings + 3;  // + firing, resolved, firing
  REQUIRE(WaitUntil([&] { return ReadBufferDb(gw.spec.data_dir).rows >= expected; }, 20000000));
  DbSnapshot snap = ReadBufferDb(gw.spec.data_dir, true);
  REQUIRE(snap.ok);
  REQUIRE(snap.rows == expected);
  SECTION("running") { CheckHistory(gw, snap, d); }
  SECTION("stopped") {
    REQUIRE(ExitCode(daemon.Terminate()) == 0);
    CheckHistory(gw, snap, d);
  }
  daemon.Terminate();
}

TEST_CASE("tail --follow prints rows committed after it started and ends on SIGINT", "[cli]") {
  Gateway gw("");
  Sluiced daemon(gw.config, gw.dir.Join("sluiced.log"));
  std::string error;
  REQUIRE(daemon.Start(&error));
  PushLines(gw.push_sock, "late.before 1\nother 2\n");
  REQUIRE(WaitUntil([&] { return ReadBufferDb(gw.spec.data_dir).rows >= 2; }, 10000000));
  Process tail;
  Process::Options o;
  o.argv = {SluicePath(), "--config", gw.config, "tail",     "-n",
            "1",          "--follow", "--json",  "--sensor", "late.*"};
  o.stdout_path = gw.dir.Join("follow.out");
  o.stderr_path = gw.dir.Join("follow.err");
  REQUIRE(tail.Start(o));
  // The row from before it started shows first: then it is following.
  REQUIRE(WaitUntil([&] { return Lines(ReadFile(o.stdout_path)).size() == 1; }, 10000000));
  PushLines(gw.push_sock, "late.a 1.5\nother 3\nlate.b 2.5\nlate.a 3.5\n");
  REQUIRE(WaitUntil([&] { return Lines(ReadFile(o.stdout_path)).size() >= 4; }, 10000000));
  CHECK(!tail.Wait(0));  // still following
  tail.Kill(SIGINT);
  auto st = tail.Wait(10000000);
  REQUIRE(st);
  CHECK(ExitCode(*st) == 0);
  bool ok = false;
  auto objs = ParseJsonLines(ReadFile(o.stdout_path), &ok);
  REQUIRE(ok);
  REQUIRE(objs.size() == 4);
  const char* sensors[] = {"late.before", "late.a", "late.b", "late.a"};
  const double values[] = {1, 1.5, 2.5, 3.5};
  for (size_t i = 0; i < 4; ++i) {
    CHECK(Str(objs[i], "sensor") == sensors[i]);
    CHECK(Num(objs[i], "value") == values[i]);
    if (i > 0) CHECK(Num(objs[i], "seq") > Num(objs[i - 1], "seq"));
  }
  CHECK(ReadFile(o.stderr_path).empty());

  // A reader that goes away (`| head -n 2`): tail -f ends by itself, exit 0.
  Pusher pusher(gw.push_sock, "busy", 200);
  pusher.Start();
  Process pipe;
  Process::Options po;
  po.argv = {"/bin/bash", "-c",
             "'" + SluicePath() + "' --config '" + gw.config +
                 "' tail -n 0 -f | head -n 2 >/dev/null; exit ${PIPESTATUS[0]}"};
  REQUIRE(pipe.Start(po));
  auto pst = pipe.Wait(20000000);
  pusher.Stop();
  REQUIRE(pst);
  CHECK(ExitCode(*pst) == 0);
  daemon.Terminate();
}

TEST_CASE("tail --follow goes on with a buffer.db the daemon replaced", "[cli]") {
  Gateway gw("");
  Sluiced daemon(gw.config, gw.dir.Join("sluiced.log"));
  std::string error;
  REQUIRE(daemon.Start(&error));
  PushLines(gw.push_sock, "first 1\n");
  REQUIRE(WaitUntil([&] { return ReadBufferDb(gw.spec.data_dir).rows >= 1; }, 10000000));
  Process tail;
  Process::Options o;
  o.argv = {SluicePath(), "--config", gw.config, "tail", "-n", "1", "-f"};
  o.stdout_path = gw.dir.Join("follow.out");
  o.stderr_path = gw.dir.Join("follow.err");
  REQUIRE(tail.Start(o));
  REQUIRE(WaitUntil([&] { return Lines(ReadFile(o.stdout_path)).size() == 1; }, 10000000));
  // As after a quarantine: the file is set aside and a fresh one started,
  // its seqs above the reservation.
  REQUIRE(ExitCode(daemon.Terminate()) == 0);
  const std::string db = gw.spec.data_dir + "/buffer.db";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    rename((db + suffix).c_str(), (db + ".old" + suffix).c_str());
  }
  REQUIRE(daemon.Start(&error));
  PushLines(gw.push_sock, "second 2\n");
  REQUIRE(WaitUntil([&] { return Lines(ReadFile(o.stdout_path)).size() >= 2; }, 15000000));
  tail.Kill(SIGTERM);
  auto st = tail.Wait(10000000);
  REQUIRE(st);
  CHECK(ExitCode(*st) == 0);
  auto lines = Lines(ReadFile(o.stdout_path));
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].find(" first ") != std::string::npos);
  CHECK(lines[1].find(" second ") != std::string::npos);
  CHECK(ReadFile(o.stderr_path).find("buffer.db was replaced") != std::string::npos);
  daemon.Terminate();
}

TEST_CASE("history commands say which events were evicted", "[cli]") {
  Gateway gw("", "max_events = 50\n");
  Sluiced daemon(gw.config, gw.dir.Join("sluiced.log"));
  std::string error;
  REQUIRE(daemon.Start(&error));
  const int64_t t0 = (WallUs() / 1000000 - 600) * 1000000;
  std::string lines;
  for (int i = 0; i < 200; ++i) {
    lines += "s" + std::to_string(i % 4) + " " + std::to_string(i) + " " +
             std::to_string(t0 + i * 1000000) + "\n";
  }
  PushLines(gw.push_sock, lines);
  REQUIRE(WaitUntil([&] { return ReadBufferDb(gw.spec.data_dir).meta_next_seq == 201; }, 20000000));
  REQUIRE(ExitCode(daemon.Terminate()) == 0);
  DbSnapshot snap = ReadBufferDb(gw.spec.data_dir);
  REQUIRE(snap.rows == 50);
  const std::string note = std::to_string(snap.min_seq - 1) + " events before seq " +
                           std::to_string(snap.min_seq) + " were evicted";
  CliRun r = RunCli({"--config", gw.config, "tail", "-n", "100"}, gw.dir.path());
  CHECK(r.code == 0);
  CHECK(Lines(r.out).size() == 50);
  CHECK(r.err.find(note) != std::string::npos);
  r = RunCli({"--config", gw.config, "export"}, gw.dir.path());
  CHECK(r.code == 0);
  CHECK(Lines(r.out).size() == 51);
  CHECK(r.err.find(note) != std::string::npos);
  // Nothing evicted in the asked range: no note.
  r = RunCli({"--config", gw.config, "tail", "-n", "10"}, gw.dir.path());
  CHECK(r.err.empty());
  r = RunCli({"--config", gw.config, "export", "--since", FormatUtc(t0 + 190000000, false)},
             gw.dir.path());
  CHECK(Lines(r.out).size() == 11);
  CHECK(r.err.empty());

  // An operator who may read the data dir but not write it (daemon stopped,
  // no -wal/-shm to share): every history command still reads buffer.db.
  const std::string dir = gw.spec.data_dir;
  for (const char* f : {"/buffer.db-wal", "/buffer.db-shm"}) unlink((dir + f).c_str());
  const std::string before = ReadFile(dir + "/buffer.db");
  std::vector<std::string> prefix;
  if (geteuid() == 0) {
    // root writes anywhere: run the commands as nobody instead.
    if (access("/usr/bin/setpriv", X_OK) != 0) return;
    prefix = {"--reuid=65534", "--regid=65534", "--clear-groups", SluicePath()};
    REQUIRE(chmod(gw.dir.path().c_str(), 0755) == 0);
    REQUIRE(chmod((dir + "/buffer.db").c_str(), 0644) == 0);
  }
  REQUIRE(chmod(dir.c_str(), 0555) == 0);
  const std::string rules = gw.dir.Join("ro-rules.toml");
  WriteFile(rules, kHotRule);
  REQUIRE(chmod(rules.c_str(), 0644) == 0);
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"tail", "-n", "3"}, {"export"}, {"alerts"}, {"buffer", "check"}, {"buffer", "stats"},
           {"rules", "backtest", rules}}) {
    std::vector<std::string> args = prefix;
    args.push_back("--data-dir");
    args.push_back(dir);
    args.insert(args.end(), cmd.begin(), cmd.end());
    CliRun ro = prefix.empty() ? RunCli(args, gw.dir.path())
                               : RunMeasured("/usr/bin/setpriv", args, gw.dir.path());
    INFO(cmd[0] << ": " << ro.err);
    CHECK(ro.code == 0);
    CHECK(!ro.out.empty());
  }
  CHECK(ReadFile(dir + "/buffer.db") == before);
  REQUIRE(chmod(dir.c_str(), 0750) == 0);
}

TEST_CASE("history commands call a seq jump after a quarantine possibly lost, not evicted",
          "[cli]") {
  Gateway gw("");
  Sluiced daemon(gw.config, gw.dir.Join("sluiced.log"));
  std::string error;
  REQUIRE(daemon.Start(&error));
  PushLines(gw.push_sock, "a 1\na 2\na 3\n");
  REQUIRE(WaitUntil([&] { return ReadBufferDb(gw.spec.data_dir).rows >= 3; }, 10000000));
  REQUIRE(ExitCode(daemon.Terminate()) == 0);
  // A corrupt file: quarantined at the next start, numbering continues
  // above the floor.
  const std::string db = gw.spec.data_dir + "/buffer.db";
  std::string bytes = ReadFile(db);
  REQUIRE(bytes.size() > 16);
  bytes.replace(0, 16, "not sqlite here!");
  REQUIRE(WriteFile(db, bytes));
  REQUIRE(daemon.Start(&error));
  PushLines(gw.push_sock, "b 1\n");
  REQUIRE(WaitUntil([&] { return ReadBufferDb(gw.spec.data_dir).rows >= 1; }, 10000000));
  REQUIRE(ExitCode(daemon.Terminate()) == 0);
  const DbSnapshot snap = ReadBufferDb(gw.spec.data_dir);
  REQUIRE(snap.min_seq > 3);
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"tail", "-n", "10"}, {"export"}}) {
    std::vector<std::string> args = {"--config", gw.config};
    args.insert(args.end(), cmd.begin(), cmd.end());
    CliRun r = RunCli(args, gw.dir.path());
    INFO(cmd[0] << ": " << r.err);
    CHECK(r.code == 0);
    CHECK(r.err.find("possibly lost") != std::string::npos);
    CHECK(r.err.find("corrupt") != std::string::npos);
    CHECK(r.err.find("evicted") == std::string::npos);
  }
  CliRun check = RunCli({"--config", gw.config, "buffer", "check"}, gw.dir.path());
  INFO(check.out);
  CHECK(check.code == 0);
  CHECK(check.out.find("skipped as possibly lost") != std::string::npos);
  CHECK(check.out.find("were evicted") == std::string::npos);
}

TEST_CASE("every command has --help; bad usage exits 2 with a usage line", "[cli]") {
  TempDir dir;
  const std::vector<std::vector<std::string>> commands = {
      {"status"},           {"metrics"},        {"tail"},
      {"alerts"},           {"export"},         {"buffer", "stats"},
      {"buffer", "check"},  {"rules", "check"}, {"rules", "list"},
      {"rules", "backtest"}};
  for (auto c : commands) {
    std::string name = c.size() == 1 ? c[0] : c[0] + " " + c[1];
    INFO(name);
    c.push_back("--help");
    CliRun r = RunCli(c, dir.path());
    CHECK(r.code == 0);
    CHECK(r.out.rfind("usage: sluice [GLOBAL OPTIONS] " + name, 0) == 0);
    CHECK(r.err.empty());
    r = RunCli({"help", c[0], c.size() > 2 ? c[1] : "--help"}, dir.path());
    CHECK(r.code == 0);
  }
  for (const auto& args : std::vector<std::vector<std::string>>{{"--help"}, {"help"}}) {
    CliRun r = RunCli(args, dir.path());
    CHECK(r.code == 0);
    for (const char* name : {"status", "metrics", "tail", "alerts", "export", "buffer check"}) {
      CHECK(r.out.find(std::string("  ") + name + " ") != std::string::npos);
    }
  }
  CliRun v = RunCli({"--version"}, dir.path());
  CHECK(v.code == 0);
  CHECK(v.out.rfind("sluice ", 0) == 0);

  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frob"},
      {"--bogus", "tail"},
      {"--config"},
      {"tail", "--bogus"},
      {"tail", "-n", "x"},
      {"tail", "-n", "-3"},
      {"tail", "-n"},
      {"tail", "extra"},
      {"export", "--format", "xml"},
      {"export", "--since", "2x"},
      {"export", "--since", "2026-13-01T00:00:00Z"},
      {"export", "--since", "2026-11-25T10:00:00"},
      {"export", "--since", "1h", "--until", "2h"},
      {"export", "--follow=yes"},
      {"alerts", "--active=1"},
      {"buffer"},
      {"buffer", "frob"},
      {"rules", "check"},
      {"rules", "backtest", "--since", "soon", "x.toml"},
  };
  for (const auto& args : bad) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    INFO("sluice " << joined);
    CliRun r = RunCli(args, dir.path());
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(r.err.rfind("sluice", 0) == 0);
    CHECK(r.err.find("usage: sluice") != std::string::npos);
  }
  // No buffer.db: a failure, not a usage error.
  for (const char* cmd : {"tail", "alerts", "export"}) {
    CliRun r = RunCli({"--data-dir", dir.Join("none"), cmd}, dir.path());
    CHECK(r.code == 1);
    CHECK(r.err.find("buffer.db") != std::string::npos);
  }
  CliRun r = RunCli({"--data-dir", dir.Join("none"), "buffer", "check"}, dir.path());
  CHECK(r.code == 1);
  // A config that does not load: exit 2 with FILE:LINE:COL.
  WriteFile(dir.Join("bad.toml"), "[agent]\nid = \"x\"\nbogus = 1\n");
  r = RunCli({"--config", dir.Join("bad.toml"), "tail"}, dir.path());
  CHECK(r.code == 2);
  CHECK(r.err.find("bad.toml:3:") != std::string::npos);
}

}  // namespace
}  // namespace testing
}  // namespace sluice
