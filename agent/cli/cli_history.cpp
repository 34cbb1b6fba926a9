// `sluice tail` and `sluice alerts` (CONTRACT.md "sluice (CLI)").
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "agent/cli/cli_commands.h"
#include "agent/cli/cli_format.h"

namespace sluice {
namespace cli {
namespace {

constexpr size_t kPage = 1024;
constexpr uint64_t kNoUpperBound = static_cast<uint64_t>(INT64_MAX);
constexpr int64_t kFollowPollUs = 200000;

ino_t Inode(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Prints every matching event with seq > *after (advancing it). Returns
// false when stdout failed or a stop was requested; *error on read errors.
bool PrintFrom(HistoryReader& db, const std::string& agent, bool json, uint64_t* after, Status* error) {
  std::vector<StoredEvent> page;
  bool done = false;
  while (!done) {
    page.clear();
    *error = db.Forward(after, kNoUpperBound, kPage, &page, &done);
    if (!error->ok()) return false;
    for (const StoredEvent& e : page) {
      if (!Emit(json ? JsonLine(agent, e) : HumanLine(e))) return false;
    }
    if (StopRequested()) return false;
  }
  return true;
}

void AllTimes(HistoryFilter* f) {
  f->since_us = INT64_MIN;
  f->until_us = INT64_MAX;
}

void SleepUs(int64_t us) {
  // In short steps, so SIGINT ends the wait promptly (SA_RESTART-free).
  for (int64_t left = us; left > 0 && !StopRequested(); left -= 20000) {
    usleep(static_cast<useconds_t>(left < 20000 ? left : 20000));
  }
}

}  // namespace

int RunTail(const CommandSpec& spec, Globals& globals, const Parsed& args) {
  uint64_t n = 10;
  if (args.Has("-n")) {
    const std::string v = args.Get("-n");
    char* end = nullptr;
    unsigned long long parsed = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || v[0] == '-' || *end != '\0' || parsed > 100000000ull) {
      return UsageError(spec, "-n needs a count (0 .. 100000000), not \"" + v + "\"");
    }
    n = parsed;
  }
  const bool follow = args.Has("--follow");
  HistorySession session;
  int rc = OpenSession(spec, globals, args, &session);
  if (rc >= 0) return rc;
  std::unique_ptr<HistoryReader>& db = session.db;
  const HistoryRange& range = session.range;
  const std::string& agent = session.agent;
  Status s;
  uint64_t after = range.last_seq;
  if (n > 0) {
    uint64_t start = 0;
    bool all = false;
    s = db->NthFromEnd(n, &start, &all);
    after = start > 0 ? start - 1 : 0;
    if (s.ok() && all) Note(EvictedNote(range, INT64_MIN));
  }
  bool go_on = s.ok();
  if (go_on && n > 0) {
    // Only up to the newest seq seen now; --follow prints the rest as it
    // arrives.
    std::vector<StoredEvent> page;
    bool done = false;
    while (go_on && !done) {
      page.clear();
      s = db->Forward(&after, range.last_seq, kPage, &page, &done);
      go_on = s.ok();
      for (const StoredEvent& e : page) {
        if (!(go_on = Emit(globals.json ? JsonLine(agent, e) : HumanLine(e)))) break;
      }
    }
  }
  if (go_on && follow) {
    go_on = FlushStdout();
    const std::string path = db->path();
    ino_t inode = Inode(path);
    while (go_on && !StopRequested()) {
      go_on = PrintFrom(*db, agent, globals.json, &after, &s);
      if (!go_on || !FlushStdout()) break;
      SleepUs(kFollowPollUs);
      ino_t now = Inode(path);
      if (now != 0 && now != inode) {
        // The daemon set a corrupt buffer.db aside and started a fresh one,
        // whose seqs continue above every seq ever handed out.
        Note("buffer.db was replaced; following the new file");
        auto reopened = HistoryReader::Open(db->data_dir(), session.filter);
        if (reopened.ok()) {
          db = std::move(*reopened);
          inode = now;
        }
      }
    }
  }
  if (!s.ok()) {
    std::fprintf(stderr, "sluice: %s: %s\n", db->path().c_str(), s.message().c_str());
    FinishStdout();
    return kExitFailure;
  }
  if (db->corrupt_rows() > 0) {
    Note("skipped " + std::to_string(db->corrupt_rows()) + " corrupt events");
  }
  return FinishStdout();
}

int RunAlerts(const CommandSpec& spec, Globals& globals, const Parsed& args) {
  const bool active = args.Has("--active");
  HistorySession session;
  session.filter.readings = false;
  // The latest state of each rule needs every stored alert, whatever
  // --since says; the time range then selects which firing ones to show.
  int rc = OpenSession(spec, globals, args, &session,
                       active ? AllTimes : static_cast<void (*)(HistoryFilter*)>(nullptr));
  if (rc >= 0) return rc;
  HistoryReader* db = session.db.get();
  const HistoryRange& range = session.range;
  const std::string& agent = session.agent;
  const int64_t since = session.filter.since_us;
  const int64_t until = session.filter.until_us;
  Status s;
  std::map<std::string, StoredEvent> latest;  // by rule: bounded by the rules
  std::vector<StoredEvent> page;
  uint64_t after = 0, shown = 0;
  bool done = false, out_ok = true;
  while (!done && out_ok) {
    page.clear();
    s = db->Forward(&after, range.last_seq, kPage, &page, &done);
    if (!s.ok()) break;
    for (const StoredEvent& e : page) {
      if (active) {
        latest[e.sensor] = e;
      } else {
        if (!(out_ok = Emit(globals.json ? JsonLine(agent, e) : HumanLine(e)))) break;
        ++shown;
      }
    }
  }
  if (!s.ok()) {
    std::fprintf(stderr, "sluice: %s: %s\n", db->path().c_str(), s.message().c_str());
    return kExitFailure;
  }
  if (active) {
    std::vector<const StoredEvent*> firing;
    Alert a;
    for (const auto& kv : latest) {
      if (DecodeStoredAlert(kv.second, &a) && a.state == "firing" && a.ts_us >= since &&
          a.ts_us < until) {
        firing.push_back(&kv.second);
      }
    }
    for (const StoredEvent* e : firing) {
      if (!Emit(globals.json ? JsonLine(agent, *e) : HumanLine(*e))) break;
    }
    shown = firing.size();
    if (!globals.json) Emit(shown ? "" : "no active alerts\n");
  } else if (!globals.json && shown == 0) {
    Emit("no alerts\n");
  }
  return FinishStdout();
}

}  // namespace cli
}  // namespace sluice
