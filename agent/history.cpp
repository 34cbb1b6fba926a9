#include "agent/history.h"

#include <flatbuffers/flatbuffers.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "buffer/codec.h"
#include "buffer/store.h"
#include "schemas/sluice_generated.h"

namespace sluice {
namespace {

std::string Str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

}  // namespace

StatusOr<std::unique_ptr<HistoryDb>> HistoryDb::Open(const std::string& data_dir,
                                                     const HistoryFilter& filter) {
  std::string path = DbPath(data_dir);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return DataFileError(path, errno);
  std::unique_ptr<HistoryDb> h(new HistoryDb());
  h->data_dir_ = data_dir;
  Status s = h->Init(path, filter);
  if (!s.ok()) return Status(s.code(), path + ": " + s.message());
  return h;
}

HistoryDb::~HistoryDb() {
  Status s = forward_.Finalize();
  s = nth_.Finalize();
  s = db_.Close();
}

Status HistoryDb::Init(const std::string& path, const HistoryFilter& filter) {
  path_ = path;
  filter_ = filter;
  SLUICE_RETURN_IF_ERROR(OpenReadOnlyDb(path, &db_));
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
  SLUICE_RETURN_IF_ERROR(forward_.Prepare(db_.get(), fwd.c_str()));
  std::string nth =
      "SELECT seq FROM events WHERE 1" + cond + " ORDER BY seq DESC LIMIT 1 OFFSET :offset";
  return nth_.Prepare(db_.get(), nth.c_str());
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

Status HistoryDb::Range(HistoryRange* out) {
  *out = HistoryRange();
  sqlite3* db = db_.get();
  // One read transaction: every figure from the same snapshot.
  SLUICE_RETURN_IF_ERROR(sql::Exec(db, "BEGIN"));
  int64_t first = 0, last = 0, next = 1, first_ts = 0;
  Status s = sql::QueryInt(db, "SELECT coalesce(min(seq), 0) FROM events", &first);
  if (s.ok()) s = sql::QueryInt(db, "SELECT coalesce(max(seq), 0) FROM events", &last);
  if (s.ok()) {
    s = sql::QueryInt(db, "SELECT coalesce((SELECT ts_us FROM events ORDER BY seq LIMIT 1), 0)",
                      &first_ts);
  }
  if (s.ok()) {
    s = sql::QueryInt(db, "SELECT coalesce((SELECT value FROM meta WHERE key = 'next_seq'), 1)",
                      &next);
  }
  int64_t has_gaps = 0;
  if (s.ok()) {
    s = sql::QueryInt(db, "SELECT count(*) FROM sqlite_master WHERE name = 'gaps'", &has_gaps);
  }
  if (s.ok() && has_gaps > 0) {
    sql::Stmt st;
    s = st.Prepare(db, "SELECT first_seq, last_seq, reason, at_us FROM gaps ORDER BY first_seq");
    int rc = SQLITE_DONE;
    while (s.ok() && (rc = st.Step()) == SQLITE_ROW) {
      SeqGap g;
      g.first_seq = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0));
      g.last_seq = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 1));
      const unsigned char* why = sqlite3_column_text(st.get(), 2);
      g.reason = why ? reinterpret_cast<const char*>(why) : "";
      g.at_us = sqlite3_column_int64(st.get(), 3);
      out->gaps.push_back(std::move(g));
    }
    if (s.ok() && rc != SQLITE_DONE) s = sql::Error(db, rc, "read gaps");
  }
  Status c = sql::Exec(db, "COMMIT");
  if (s.ok()) s = c;
  SLUICE_RETURN_IF_ERROR(s);
  out->first_seq = static_cast<uint64_t>(first);
  out->last_seq = static_cast<uint64_t>(last);
  out->first_ts_us = first_ts;
  out->last_committed = next > 1 ? static_cast<uint64_t>(next - 1) : 0;
  if (out->last_committed < out->last_seq) out->last_committed = out->last_seq;
  return Status::Ok();
}

Status HistoryDb::Forward(uint64_t* after, uint64_t upto, size_t max, std::vector<StoredEvent>* out,
                          bool* done) {
  *done = true;
  if (max == 0 || upto <= *after) return Status::Ok();
  sqlite3_stmt* st = forward_.get();
  BindFilter(st, filter_);
  BindU64(st, ":after", *after);
  BindU64(st, ":upto", upto);
  BindU64(st, ":limit", max);
  size_t stepped = 0;
  int rc;
  while ((rc = forward_.Step()) == SQLITE_ROW) {
    ++stepped;
    *after = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    const void* body = sqlite3_column_blob(st, 4);
    size_t len = static_cast<size_t>(sqlite3_column_bytes(st, 4));
    if (!VerifyEncodedEvent(body, len)) {
      ++corrupt_rows_;
      continue;
    }
    out->emplace_back();
    StoredEvent& e = out->back();
    e.seq = *after;
    e.ts_us = sqlite3_column_int64(st, 1);
    e.kind = sqlite3_column_int(st, 2);
    const unsigned char* sensor = sqlite3_column_text(st, 3);
    e.sensor.assign(reinterpret_cast<const char*>(sensor),
                    static_cast<size_t>(sqlite3_column_bytes(st, 3)));
    e.body.assign(static_cast<const char*>(sqlite3_column_blob(st, 4)), len);
  }
  Status s;
  if (rc != SQLITE_DONE) s = sql::Error(db_.get(), rc, "read events");
  forward_.Reset();
  *done = stepped < max;
  return s;
}

Status HistoryDb::NthFromEnd(uint64_t n, uint64_t* seq, bool* all) {
  *seq = 0;
  *all = false;
  if (n == 0) return Status::Ok();
  sqlite3_stmt* st = nth_.get();
  BindFilter(st, filter_);
  BindU64(st, ":offset", n - 1);
  int rc = nth_.Step();
  if (rc == SQLITE_ROW) *seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
  Status s;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) s = sql::Error(db_.get(), rc, "find tail start");
  nth_.Reset();
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
