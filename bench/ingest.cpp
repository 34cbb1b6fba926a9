// `sluice-bench ingest`: events/s committed through the real ring (one
// producer thread: Ring::Append of pre-encoded readings, then Flush) at
// durability normal and full, beside raw SQLite batched inserts of the same
// rows in the same run.
//
// The raw baseline uses the ring's schema (same columns and the same
// events_evict index, which the ring must maintain too), WAL, synchronous
// NORMAL (and FULL beside ring_full), one prepared INSERT, and transactions
// of the same size as the ring's average group commit measured in the same
// round (events / commits), so both do the same number of commits.
#include <sqlite3.h>

#include <cmath>
#include <cstdio>
#include <utility>

#include "bench/bench.h"
#include "bench/util.h"
#include "common/clock.h"

namespace sluice {
namespace bench {
namespace {

struct Figure {
  double eps = 0;
  double seconds = 0;
  double cpu_us_per_event = 0;
  uint64_t commits = 0;
  uint64_t batch = 0;
};

StatusOr<Figure> RingRun(const std::string& dir, uint64_t n, Durability d) {
  std::vector<Record> recs = MakeRecords(0, n);
  auto ring = Ring::Open(RingOptionsFor(dir, n, d), SystemClock::Get());
  if (!ring.ok()) return ring.status();
  const uint64_t commits0 = (*ring)->Stats().commits;
  const double cpu0 = SelfCpuSeconds();
  const int64_t start = NowUs();
  for (Record& r : recs) {
    Status s = (*ring)->Append(std::move(r), 60000000);
    if (!s.ok()) return s;
  }
  Status f = (*ring)->Flush();
  const int64_t end = NowUs();
  const double cpu = SelfCpuSeconds() - cpu0;
  if (!f.ok()) return f;
  RingStats st = (*ring)->Stats();
  if (st.last_seq != n || st.dropped != 0 || st.failed_events != 0) {
    return Internal("ring: last_seq " + std::to_string(st.last_seq) + " dropped " +
                    std::to_string(st.dropped) + " failed " + std::to_string(st.failed_events));
  }
  Status s = (*ring)->Stop();
  if (!s.ok()) return s;
  Figure fig;
  fig.seconds = static_cast<double>(end - start) / 1e6;
  fig.eps = static_cast<double>(n) / fig.seconds;
  fig.commits = st.commits - commits0;
  fig.batch = fig.commits ? (n + fig.commits / 2) / fig.commits : n;
  fig.cpu_us_per_event = cpu * 1e6 / static_cast<double>(n);
  return fig;
}

Status Check(sqlite3* db, int rc, const char* what) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return Status::Ok();
  return Internal(std::string(what) + ": " + sqlite3_errmsg(db));
}

StatusOr<Figure> RawRun(const std::string& dir, uint64_t n, uint64_t batch, bool full) {
  std::vector<Record> recs = MakeRecords(0, n);
  sqlite3* db = nullptr;
  const std::string path = dir + "/raw.db";
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    sqlite3_close(db);
    return Internal("open " + path);
  }
  std::string setup = std::string("PRAGMA journal_mode=WAL;PRAGMA synchronous=") +
                      (full ? "FULL" : "NORMAL") +
                      ";CREATE TABLE events(seq INTEGER PRIMARY KEY, ts_us INTEGER NOT NULL,"
                      " sensor TEXT NOT NULL, kind INTEGER NOT NULL,"
                      " priority INTEGER NOT NULL, body BLOB NOT NULL);"
                      "CREATE INDEX events_evict ON events(priority, seq);";
  Status s = Check(db, sqlite3_exec(db, setup.c_str(), nullptr, nullptr, nullptr), "setup");
  sqlite3_stmt* ins = nullptr;
  if (s.ok()) {
    s = Check(db,
              sqlite3_prepare_v2(db,
                                 "INSERT INTO events(seq, ts_us, sensor, kind, priority, body) "
                                 "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                                 -1, &ins, nullptr),
              "prepare");
  }
  const double cpu0 = SelfCpuSeconds();
  const int64_t start = NowUs();
  uint64_t commits = 0;
  for (uint64_t i = 0; s.ok() && i < n; i += batch) {
    s = Check(db, sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), "begin");
    for (uint64_t j = i; s.ok() && j < std::min(n, i + batch); ++j) {
      const Record& r = recs[j];
      sqlite3_bind_int64(ins, 1, static_cast<sqlite3_int64>(j + 1));
      sqlite3_bind_int64(ins, 2, r.ts_us);
      sqlite3_bind_text(ins, 3, r.sensor.data(), static_cast<int>(r.sensor.size()), SQLITE_STATIC);
      sqlite3_bind_int(ins, 4, r.kind);
      sqlite3_bind_int(ins, 5, r.priority);
      sqlite3_bind_blob(ins, 6, r.body.data(), static_cast<int>(r.body.size()), SQLITE_STATIC);
      s = Check(db, sqlite3_step(ins), "insert");
      sqlite3_reset(ins);
    }
    if (s.ok()) s = Check(db, sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), "commit");
    ++commits;
  }
  const int64_t end = NowUs();
  const double cpu = SelfCpuSeconds() - cpu0;
  sqlite3_finalize(ins);
  sqlite3_close(db);
  if (!s.ok()) return s;
  Figure fig;
  fig.seconds = static_cast<double>(end - start) / 1e6;
  fig.eps = static_cast<double>(n) / fig.seconds;
  fig.commits = commits;
  fig.batch = batch;
  fig.cpu_us_per_event = cpu * 1e6 / static_cast<double>(n);
  return fig;
}

struct Series {
  std::vector<double> eps, seconds, cpu, batch;
  uint64_t commits = 0;
  void Add(const Figure& f) {
    eps.push_back(f.eps);
    seconds.push_back(f.seconds);
    cpu.push_back(f.cpu_us_per_event);
    batch.push_back(static_cast<double>(f.batch));
    commits = f.commits;
  }
};

void Report(const std::string& name, const Series& s, uint64_t n, int runs,
            const std::string& durability, double ratio, const std::string& ratio_to) {
  JsonLine j("ingest", name);
  j.Int("events", static_cast<int64_t>(n))
      .Num("seconds", Median(s.seconds))
      .Num("events_per_s", Median(s.eps))
      .Int("median_of", runs)
      .Str("durability", durability)
      .Num("rows_per_commit", Median(s.batch))
      .Num("cpu_us_per_event", Median(s.cpu));
  if (ratio > 0) j.Num("ratio_to_raw", ratio).Str("raw_case", ratio_to);
  j.Print();
  char note[128] = "";
  if (ratio > 0) std::snprintf(note, sizeof(note), "%.0f%% of %s (target >= 80%%)", ratio * 100, ratio_to.c_str());
  AddSummary({"ingest", name, FormatRate(Median(s.eps)), note});
}

}  // namespace

int RunIngest(const Args& args) {
  const uint64_t n = args.events ? args.events : (args.quick ? 5000 : 200000);
  const int runs = args.runs > 0 ? args.runs : (args.quick ? 1 : 5);
  Series ring_normal, ring_full, raw_normal, raw_full, raw_small;
  for (int run = 0; run < runs; ++run) {
    // Each case in a fresh directory; ring and raw alternate so drift in
    // the machine's state hits both.
    TempDir d1, d2, d3, d4, d5;
    if (args.keep) d1.Keep(), d2.Keep(), d3.Keep(), d4.Keep(), d5.Keep();
    auto rn = RingRun(d1.path(), n, Durability::kNormal);
    if (!rn.ok()) {
      std::fprintf(stderr, "ingest: ring normal: %s\n", rn.status().ToString().c_str());
      return 1;
    }
    auto wn = RawRun(d2.path(), n, rn->batch, false);
    auto rf = RingRun(d3.path(), n, Durability::kFull);
    if (!wn.ok() || !rf.ok()) {
      std::fprintf(stderr, "ingest: %s\n",
                   (!wn.ok() ? wn.status() : rf.status()).ToString().c_str());
      return 1;
    }
    auto wf = RawRun(d4.path(), n, rf->batch, true);
    if (!wf.ok()) {
      std::fprintf(stderr, "ingest: raw full: %s\n", wf.status().ToString().c_str());
      return 1;
    }
    // For reference: what SQLite does with small transactions.
    auto ws = RawRun(d5.path(), n, 1000, false);
    if (!ws.ok()) {
      std::fprintf(stderr, "ingest: raw small: %s\n", ws.status().ToString().c_str());
      return 1;
    }
    raw_small.Add(*ws);
    ring_normal.Add(*rn);
    raw_normal.Add(*wn);
    ring_full.Add(*rf);
    raw_full.Add(*wf);
    std::fprintf(stderr,
                 "ingest run %d/%d: ring_normal %.0f/s (%llu rows/commit), raw_normal %.0f/s, "
                 "ring_full %.0f/s (%llu rows/commit), raw_full %.0f/s\n",
                 run + 1, runs, rn->eps, static_cast<unsigned long long>(rn->batch), wn->eps,
                 rf->eps, static_cast<unsigned long long>(rf->batch), wf->eps);
  }
  const double raw_n = Median(raw_normal.eps);
  const double raw_f = Median(raw_full.eps);
  Report("raw_sqlite_normal", raw_normal, n, runs, "normal", 0, "");
  Report("raw_sqlite_full", raw_full, n, runs, "full", 0, "");
  Report("raw_sqlite_normal_1000_per_txn", raw_small, n, runs, "normal", 0, "");
  Report("ring_normal", ring_normal, n, runs, "normal", Median(ring_normal.eps) / raw_n,
         "raw_sqlite_normal");
  Report("ring_full", ring_full, n, runs, "full", Median(ring_full.eps) / raw_f, "raw_sqlite_full");
  JsonLine("ingest", "ring_full_vs_raw_normal")
      .Num("ratio_to_raw", Median(ring_full.eps) / raw_n)
      .Int("median_of", runs)
      .Print();
  return 0;
}

}  // namespace bench
}  // namespace sluice
