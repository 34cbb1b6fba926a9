// `sluice export` (CONTRACT.md "sluice (CLI)"): every matching event of
// buffer.db in seq order, streamed page by page (constant memory), as CSV
// or JSON lines. Progress on stderr only when stderr is a terminal.
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "agent/cli/cli_commands.h"
#include "agent/cli/cli_format.h"
#include "common/clock.h"

namespace sluice {
namespace cli {
namespace {

constexpr size_t kPage = 2048;
constexpr int64_t kProgressEveryUs = 250000;

// One "\r"-rewritten status line on a terminal.
class Progress {
 public:
  Progress(bool enabled, uint64_t first_seq, uint64_t last_seq)
      : enabled_(enabled),
        first_(first_seq),
        last_(last_seq),
        start_us_(SystemClock::Get().NowMonotonicUs()),
        next_us_(start_us_ + kProgressEveryUs) {}

  void Update(uint64_t rows, uint64_t seq) {
    if (!enabled_) return;
    int64_t now = SystemClock::Get().NowMonotonicUs();
    if (now < next_us_) return;
    next_us_ = now + kProgressEveryUs;
    double pct = last_ > first_ ? 100.0 * static_cast<double>(seq - first_) /
                                      static_cast<double>(last_ - first_)
                                : 100.0;
    std::fprintf(stderr,
                 "\rexport: %" PRIu64 " rows  %.0f rows/s  seq %" PRIu64 "/%" PRIu64 "  %.0f%%   ",
                 rows, Rate(rows, now), seq, last_, pct);
    std::fflush(stderr);
  }

  void Done(uint64_t rows) {
    if (!enabled_) return;
    int64_t now = SystemClock::Get().NowMonotonicUs();
    std::fprintf(stderr, "\rexport: %" PRIu64 " rows in %.1f s (%.0f rows/s)%20s\n", rows,
                 static_cast<double>(now - start_us_) / 1e6, Rate(rows, now), "");
  }

 private:
  double Rate(uint64_t rows, int64_t now) const {
    double secs = static_cast<double>(now - start_us_) / 1e6;
    return secs > 0 ? static_cast<double>(rows) / secs : 0.0;
  }

  bool enabled_;
  uint64_t first_, last_;
  int64_t start_us_, next_us_;
};

}  // namespace

int RunExport(const CommandSpec& spec, Globals& globals, const Parsed& args) {
  std::string format = args.Get("--format", globals.json ? "jsonl" : "csv");
  if (format == "json") format = "jsonl";
  if (format != "csv" && format != "jsonl") {
    return UsageError(spec, "--format must be csv or jsonl, not \"" + format + "\"");
  }
  HistorySession session;
  int rc = OpenSession(spec, globals, args, &session);
  if (rc >= 0) return rc;
  HistoryReader* db = session.db.get();
  const HistoryRange& range = session.range;
  const std::string& agent = session.agent;
  Note(EvictedNote(range, session.filter.since_us));
  Status s;
  // The range is fixed at the start: events committed while exporting are
  // left for the next export (seq > range.last_seq).
  Progress progress(isatty(STDERR_FILENO) == 1, range.first_seq, range.last_seq);
  const bool csv = format == "csv";
  bool out_ok = !csv || Emit(kCsvHeader);
  uint64_t rows = 0, after = range.first_seq > 0 ? range.first_seq - 1 : 0;
  std::vector<StoredEvent> page;
  std::string chunk;
  bool done = false;
  while (!done && out_ok && !StopRequested()) {
    page.clear();
    s = db->Forward(&after, range.last_seq, kPage, &page, &done);
    if (!s.ok()) break;
    chunk.clear();
    for (const StoredEvent& e : page) chunk += csv ? CsvRow(e) : JsonLine(agent, e);
    rows += page.size();
    out_ok = Emit(chunk);
    progress.Update(rows, after);
  }
  if (!s.ok()) {
    std::fprintf(stderr, "\nsluice: %s: %s\n", db->path().c_str(), s.message().c_str());
    FinishStdout();
    return kExitFailure;
  }
  if (db->corrupt_rows() > 0) {
    Note("skipped " + std::to_string(db->corrupt_rows()) + " corrupt events");
  }
  if (StopRequested()) {
    std::fprintf(stderr, "\nsluice: export interrupted after %" PRIu64 " rows\n", rows);
    FinishStdout();
    return 130;
  }
  rc = FinishStdout();
  if (out_ok) progress.Done(rows);
  return rc;
}

}  // namespace cli
}  // namespace sluice
