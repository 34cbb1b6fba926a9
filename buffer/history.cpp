#include "buffer/history.h"

#include <flatbuffers/flatbuffers.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "buffer/codec.h"
#include "buffer/internal/reader.h"
#include "buffer/internal/sqlite_util.h"
#include "buffer/internal/store.h"
#include "schemas/sluice_generated.h"

namespace sluice {
namespace {

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

}  // namespace

struct HistoryReader::Impl {
  ~Impl() {
    Status s = forward.Finalize();
    s = nth.Finalize();
    s = db.Close();
  }
  Status Init(const std::string& path, const HistoryFilter& f);

  std::string data_dir;
  std::string path;
  uint64_t corrupt_rows = 0;
  sql::Db db;
  sql::Stmt forward;  // after db: finalized before the close
  sql::Stmt nth;
  HistoryFilter filter;
};

StatusOr<std::unique_ptr<HistoryReader>> HistoryReader::Open(const std::string& data_dir,
                                                             const HistoryFilter& filter) {
  std::string path = DbPath(data_dir);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return DataFileError(path, errno);
  auto impl = std::make_unique<Impl>();
  impl->data_dir = data_dir;
  Status s = impl->Init(path, filter);
  if (!s.ok()) return Status(s.code(), path + ": " + s.message());
  return std::unique_ptr<HistoryReader>(new HistoryReader(std::move(impl)));
}

HistoryReader::HistoryReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HistoryReader::~HistoryReader() = default;

uint64_t HistoryReader::corrupt_rows() const { return impl_->corrupt_rows; }
const std::string& HistoryReader::path() const { return impl_->path; }
const std::string& HistoryReader::data_dir() const { return impl_->data_dir; }

Status HistoryReader::Impl::Init(const std::string& p, const HistoryFilter& f) {
  path = p;
  filter = f;
  SLUICE_RETURN_IF_ERROR(OpenReadOnlyDb(path, &db));
  std::string cond;
  if (!filter.sensor_globs.empty()) {
    cond += " AND kind = " + std::to_string(static_cast<int>(EventKind::kReading)) + " AND (";
    for (size_t i = 0; i < filter.sensor_globs.size(); ++i) {
      cond += (i ? " OR " : "") + std::string("sensor GLOB :g") + std::to_string(i);
    }
    cond += ")";
  } else if (filter.readings && !filter.alerts) {
    cond += " AND kind = " + std::to_string(static_cast<int>(EventKind::kReading));
  } else if (filter.alerts && !filter.readings) {
    // Alerts are committed with kAlertPriority: this walks the
    // events_evict(priority, seq) index instead of the whole table.
    cond += " AND priority = " + std::to_string(kAlertPriority) +
            " AND kind = " + std::to_string(static_cast<int>(EventKind::kAlert));
  } else if (!filter.alerts && !filter.readings) {
    cond += " AND 0";
  }
  if (filter.since_us != INT64_MIN) cond += " AND ts_us >= :since";
  if (filter.until_us != INT64_MAX) cond += " AND ts_us < :until";
  std::string fwd =
      "SELECT seq, ts_us, kind, sensor, body FROM events WHERE seq > :after"
      " AND seq <= :upto" +
      cond + " ORDER BY seq LIMIT :limit";
  SLUICE_RETURN_IF_ERROR(forward.Prepare(db.get(), fwd.c_str()));
  std::string nth_sql =
      "SELECT seq FROM events WHERE 1" + cond + " ORDER BY seq DESC LIMIT 1 OFFSET :offset";
  return nth.Prepare(db.get(), nth_sql.c_str());
}

namespace {

void BindFilter(sqlite3_stmt* st, const HistoryFilter& f) {
  for (size_t i = 0; i < f.sensor_globs.size(); ++i) {
    std::string name = ":g" + std::to_string(i);
    sqlite3_bind_text(st, sqlite3_bind_parameter_index(st, name.c_str()), f.sensor_globs[i].c_str(),
                      -1, SQLITE_TRANSIENT);
  }
  if (int i = sqlite3_bind_parameter_index(st, ":since")) sqlite3_bind_int64(st, i, f.since_us);
  if (int i = sqlite3_bind_parameter_index(st, ":until")) sqlite3_bind_int64(st, i, f.until_us);
}

void BindU64(sqlite3_stmt* st, const char* name, uint64_t v) {
  sqlite3_bind_int64(st, sqlite3_bind_parameter_index(st, name),
                     static_cast<sqlite3_int64>(v > INT64_MAX ? INT64_MAX : v));
}

}  // namespace

Status HistoryReader::Range(HistoryRange* out) {
  *out = HistoryRange();
  sqlite3* db = impl_->db.get();
  // One read transaction: every figure from the same snapshot.
  SLUICE_RETURN_IF_ERROR(sql::Exec(db, "BEGIN"));
  int64_t first = 0, last = 0, first_ts = 0;
  Meta meta;
  Status s = sql::QueryInt(db, "SELECT coalesce(min(seq), 0) FROM events", &first);
  if (s.ok()) s = sql::QueryInt(db, "SELECT coalesce(max(seq), 0) FROM events", &last);
  if (s.ok()) {
    s = sql::QueryInt(db, "SELECT coalesce((SELECT ts_us FROM events ORDER BY seq LIMIT 1), 0)",
                      &first_ts);
  }
  if (s.ok()) s = ReadMeta(db, &meta);
  if (s.ok()) s = ReadGaps(db, &out->gaps);
  Status c = sql::Exec(db, "COMMIT");
  if (s.ok()) s = c;
  SLUICE_RETURN_IF_ERROR(s);
  const int64_t next = meta.next_seq == -1 ? 1 : meta.next_seq;
  out->first_seq = static_cast<uint64_t>(first);
  out->last_seq = static_cast<uint64_t>(last);
  out->first_ts_us = first_ts;
  out->last_committed = next > 1 ? static_cast<uint64_t>(next - 1) : 0;
  if (out->last_committed < out->last_seq) out->last_committed = out->last_seq;
  return Status::Ok();
}

Status HistoryReader::Forward(uint64_t* after, uint64_t upto, size_t max,
                              std::vector<StoredEvent>* out, bool* done) {
  *done = true;
  if (max == 0 || upto <= *after) return Status::Ok();
  sql::Stmt& forward = impl_->forward;
  sqlite3_stmt* st = forward.get();
  BindFilter(st, impl_->filter);
  BindU64(st, ":after", *after);
  BindU64(st, ":upto", upto);
  BindU64(st, ":limit", max);
  size_t stepped = 0;
  int rc;
  while ((rc = forward.Step()) == SQLITE_ROW) {
    ++stepped;
    out->emplace_back();
    const bool good = EventFromRow(st, &out->back());
    *after = out->back().seq;
    if (!good) {
      out->pop_back();
      ++impl_->corrupt_rows;
    }
  }
  Status s;
  if (rc != SQLITE_DONE) s = sql::Error(impl_->db.get(), rc, "read events");
  forward.Reset();
  *done = stepped < max;
  return s;
}

Status HistoryReader::NthFromEnd(uint64_t n, uint64_t* seq, bool* all) {
  *seq = 0;
  *all = false;
  if (n == 0) return Status::Ok();
  sql::Stmt& nth = impl_->nth;
  sqlite3_stmt* st = nth.get();
  BindFilter(st, impl_->filter);
  BindU64(st, ":offset", n - 1);
  int rc = nth.Step();
  if (rc == SQLITE_ROW) *seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
  Status s;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) s = sql::Error(impl_->db.get(), rc, "find tail start");
  nth.Reset();
  SLUICE_RETURN_IF_ERROR(s);
  *all = *seq == 0;
  return Status::Ok();
}

bool DecodeStoredAlert(const StoredEvent& e, Alert* out) {
  if (e.kind != static_cast<int>(EventKind::kAlert)) return false;
  if (!VerifyEncodedEvent(e.body.data(), e.body.size())) return false;
  const fb::Event* ev = flatbuffers::GetRoot<fb::Event>(e.body.data());
  out->rule = ev->rule() ? ev->rule()->str() : e.sensor;
  out->state = Str(ev->state());
  out->severity = Str(ev->severity());
  out->ts_us = ev->ts_us();
  out->value = ev->value();
  out->message = Str(ev->message());
  out->labels.clear();
  if (const auto* labels = ev->labels()) {
    for (const fb::Label* l : *labels) {
      if (l != nullptr) out->labels.emplace_back(Str(l->key()), Str(l->value()));
    }
  }
  return true;
}

uint64_t GapSeqsUpTo(const std::vector<SeqGap>& gaps, uint64_t upto) {
  uint64_t n = 0;
  for (const SeqGap& g : gaps) {
    if (g.first_seq > upto || g.last_seq < g.first_seq) continue;
    n += std::min(g.last_seq, upto) - g.first_seq + 1;
  }
  return n;
}

namespace {

// "; 12 seqs (5..16) skipped as possibly lost: <reason>" for the gaps at or
// below `upto`.
std::string LostNote(const std::vector<SeqGap>& gaps, uint64_t upto) {
  const uint64_t lost = GapSeqsUpTo(gaps, upto);
  if (lost == 0) return "";
  std::string out = "; " + std::to_string(lost) + " seqs skipped as possibly lost (";
  bool first = true;
  for (const SeqGap& g : gaps) {
    if (g.first_seq > upto) continue;
    out += (first ? "" : ", ") + std::to_string(g.first_seq) + ".." +
           std::to_string(g.last_seq) + ": " + g.reason;
    first = false;
  }
  return out + ")";
}

}  // namespace

std::string EvictedNote(const HistoryRange& range, int64_t since_us) {
  if (range.first_seq == 0) {
    if (range.last_committed == 0) return "";
    const uint64_t lost = GapSeqsUpTo(range.gaps, range.last_committed);
    return "all " + std::to_string(range.last_committed - lost) +
           " committed events were evicted (the ring is empty)" +
           LostNote(range.gaps, range.last_committed);
  }
  if (range.first_seq <= 1 || since_us > range.first_ts_us) return "";
  const uint64_t before = range.first_seq - 1;
  const uint64_t lost = GapSeqsUpTo(range.gaps, before);
  std::string note;
  if (before > lost) {
    note = std::to_string(before - lost) + " events before seq " +
           std::to_string(range.first_seq) + " were evicted";
  }
  std::string lost_note = LostNote(range.gaps, before);
  if (note.empty() && !lost_note.empty()) return lost_note.substr(2);
  return note + lost_note;
}

}  // namespace sluice
