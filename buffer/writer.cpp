#include "buffer/writer.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>

#include "buffer/codec.h"
#include "buffer/store.h"

namespace sluice {
namespace {

constexpr int kMaxAttempts = 8;
constexpr size_t kEvictCheckRows = 256;
const char* const kCounterNames[4] = {"evicted_total", "evicted_full",
                                      "full_events", "corrupt_recoveries"};

Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return InvalidArgument("buffer: data_dir is empty");
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    cur = dir.substr(0, pos);
    if (cur.empty()) continue;
    // 0750: the buffer is the daemon's, not the world's.
    if (::mkdir(cur.c_str(), 0750) != 0 && errno != EEXIST) {
      return IoError("mkdir " + cur + ": " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

}  // namespace

Writer::Writer(const RingOptions& options, Clock& clock)
    : options_(options),
      clock_(clock),
      seq_(options.data_dir),
      run_(options.data_dir),
      disk_(options.data_dir),
      cap_bytes_(options.max_bytes),
      full_log_(LogLevel::kWarn, "buffer", 10000000, clock),
      fail_log_(LogLevel::kError, "buffer", 10000000, clock) {}

Writer::~Writer() {
  Status s = Close();
  if (!s.ok()) LogError("buffer", "close: " + s.ToString());
}

StatusOr<std::unique_ptr<Writer>> Writer::Open(const RingOptions& options,
                                               Clock& clock) {
  if (options.max_events == 0 || options.max_bytes == 0 ||
      options.queue_capacity == 0 || options.commit_interval_us < 0) {
    return InvalidArgument("buffer: max_events, max_bytes and queue_capacity "
                           "must be positive");
  }
  SLUICE_RETURN_IF_ERROR(MakeDirs(options.data_dir));
  std::unique_ptr<Writer> w(new Writer(options, clock));
  SLUICE_RETURN_IF_ERROR(w->seq_.Load());
  bool created = false;
  uint64_t quarantined = 0;
  Status s = OpenChecked(options.data_dir, clock,
                         options.integrity_check_budget_us, &w->db_, &created);
  if (s.code() == StatusCode::kCorruption) {
    Status c = w->db_.Close();
    if (!c.ok()) LogError("buffer", "close of corrupt buffer.db: " + c.ToString());
    std::string moved;
    SLUICE_RETURN_IF_ERROR(
        Quarantine(options.data_dir, clock, &moved, &quarantined));
    LogError("buffer", "CORRUPT DATABASE: " + DbPath(options.data_dir) +
                           " is unusable (" + s.message() + "); moved it to " +
                           moved + " and started a fresh buffer");
    s = OpenChecked(options.data_dir, clock, options.integrity_check_budget_us,
                    &w->db_, &created);
    created = true;
  }
  SLUICE_RETURN_IF_ERROR(s);
  uint64_t cap = options.max_file_bytes != 0 ? options.max_file_bytes
                                             : HardCapBytes(options.max_bytes);
  SLUICE_RETURN_IF_ERROR(ConfigureWriter(w->db_.get(), options.durability, cap));
  SLUICE_RETURN_IF_ERROR(w->Init(created, quarantined));
  return w;
}

Status Writer::Init(bool created, uint64_t quarantined) {
  SLUICE_RETURN_IF_ERROR(SizeForDisk());
  SLUICE_RETURN_IF_ERROR(Prepare());
  SLUICE_RETURN_IF_ERROR(LoadState());
  if (created && seq_.reserved() >= state_.txn.next_seq) {
    // A replaced database continues above every seq ever handed out.
    state_.txn.next_seq = seq_.reserved() + 1;
    LogInfo("buffer", "new buffer.db continues at seq " +
                          std::to_string(state_.txn.next_seq));
    force_ = true;
  }
  bool machine_went_down = false;
  SLUICE_RETURN_IF_ERROR(run_.Check(&machine_went_down));
  if (machine_went_down && options_.durability != Durability::kFull &&
      seq_.reserved() >= state_.txn.next_seq) {
    // The last run ended with the machine going down: with synchronous
    // OFF/NORMAL its last commits may be lost while their seqs already
    // reached an upstream. Never hand them out again.
    state_.txn.next_seq = seq_.reserved() + 1;
    LogWarn("buffer", "the previous run ended with the machine going down (power loss or "
                      "reset) with durability below full; continuing at seq " +
                          std::to_string(state_.txn.next_seq) +
                          " so that no seq that may have been sent is reused");
    force_ = true;
  }
  SLUICE_RETURN_IF_ERROR(run_.Create());
  if (quarantined > state_.corrupt_recoveries) {
    state_.corrupt_recoveries = quarantined;
    force_ = true;
  }
  if (OverLimits()) force_ = true;
  if (force_) {
    std::vector<Record> none;
    SLUICE_RETURN_IF_ERROR(Commit(&none, state_.acked));
  }
  return Status::Ok();
}

Status Writer::Prepare() {
  sqlite3* db = db_.get();
  SLUICE_RETURN_IF_ERROR(begin_.Prepare(db, "BEGIN IMMEDIATE"));
  SLUICE_RETURN_IF_ERROR(commit_.Prepare(db, "COMMIT"));
  SLUICE_RETURN_IF_ERROR(rollback_.Prepare(db, "ROLLBACK"));
  SLUICE_RETURN_IF_ERROR(insert_.Prepare(
      db, "INSERT INTO events(seq, ts_us, sensor, kind, priority, body) "
          "VALUES(?1, ?2, ?3, ?4, ?5, ?6)"));
  SLUICE_RETURN_IF_ERROR(scan_.Prepare(
      db, "SELECT seq, priority, length(body) + length(CAST(sensor AS BLOB)) "
          "FROM events INDEXED BY events_evict ORDER BY priority, seq"));
  SLUICE_RETURN_IF_ERROR(delete_range_.Prepare(
      db, "DELETE FROM events WHERE priority = ?1 AND seq <= ?2"));
  SLUICE_RETURN_IF_ERROR(meta_.Prepare(
      db, "INSERT OR REPLACE INTO meta(key, value) VALUES('next_seq', ?1), "
          "('row_count', ?2), ('row_bytes', ?3)"));
  SLUICE_RETURN_IF_ERROR(cursor_.Prepare(
      db, "INSERT INTO cursors(upstream, acked_seq, evicted_unsent) "
          "VALUES(?1, ?2, ?3) ON CONFLICT(upstream) DO UPDATE SET "
          "acked_seq = excluded.acked_seq, "
          "evicted_unsent = excluded.evicted_unsent"));
  SLUICE_RETURN_IF_ERROR(counter_.Prepare(
      db, "INSERT OR REPLACE INTO counters(name, value) VALUES(?1, ?2)"));
  return first_.Prepare(db, "SELECT seq, ts_us FROM events ORDER BY seq LIMIT 1");
}

Status Writer::LoadState() {
  sqlite3* db = db_.get();
  TxnState& t = state_.txn;
  {
    sql::Stmt st;
    SLUICE_RETURN_IF_ERROR(st.Prepare(db, "SELECT key, value FROM meta"));
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      std::string key = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
      uint64_t v = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 1));
      if (key == "next_seq") t.next_seq = std::max<uint64_t>(v, 1);
      if (key == "row_count") t.events = v;
      if (key == "row_bytes") t.bytes = v;
    }
    if (rc != SQLITE_DONE) return sql::Error(db, rc, "load meta");
  }
  {
    sql::Stmt st;
    SLUICE_RETURN_IF_ERROR(st.Prepare(db, "SELECT name, value FROM counters"));
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      std::string name = reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
      uint64_t v = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 1));
      if (name == kCounterNames[0]) t.evicted_total = v;
      if (name == kCounterNames[1]) t.evicted_full = v;
      if (name == kCounterNames[2]) state_.full_events = v;
      if (name == kCounterNames[3]) state_.corrupt_recoveries = v;
    }
    if (rc != SQLITE_DONE) return sql::Error(db, rc, "load counters");
  }
  saved_counters_[0] = t.evicted_total;
  saved_counters_[1] = t.evicted_full;
  saved_counters_[2] = state_.full_events;
  saved_counters_[3] = state_.corrupt_recoveries;
  state_.acked.assign(options_.upstreams.size(), 0);
  t.evicted_unsent.assign(options_.upstreams.size(), 0);
  {
    sql::Stmt st;
    SLUICE_RETURN_IF_ERROR(st.Prepare(
        db, "SELECT acked_seq, evicted_unsent FROM cursors WHERE upstream = ?1"));
    for (size_t i = 0; i < options_.upstreams.size(); ++i) {
      const std::string& name = options_.upstreams[i];
      sqlite3_bind_text(st.get(), 1, name.data(), static_cast<int>(name.size()),
                        SQLITE_STATIC);
      int rc = st.Step();
      if (rc == SQLITE_ROW) {
        state_.acked[i] = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0));
        t.evicted_unsent[i] = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 1));
      } else if (rc != SQLITE_DONE) {
        st.Reset();
        return sql::Error(db, rc, "load cursors");
      }
      st.Reset();
    }
  }
  saved_unsent_ = t.evicted_unsent;
  {
    sql::Stmt st;
    SLUICE_RETURN_IF_ERROR(st.Prepare(
        db, "SELECT seq, ts_us FROM events ORDER BY seq DESC LIMIT 1"));
    int rc = st.Step();
    if (rc == SQLITE_ROW) {
      uint64_t max_seq = static_cast<uint64_t>(sqlite3_column_int64(st.get(), 0));
      t.last_ts_us = sqlite3_column_int64(st.get(), 1);
      // Never trust a high-water mark below a stored row.
      if (max_seq >= t.next_seq) t.next_seq = max_seq + 1;
    } else if (rc != SQLITE_DONE) {
      return sql::Error(db, rc, "load last event");
    }
  }
  return RefreshFirst();
}

bool Writer::OverLimits() const {
  return state_.txn.events > options_.max_events || state_.txn.bytes > cap_bytes_;
}

bool Writer::NeedsCommit(const std::vector<uint64_t>& acked) const {
  return force_ || OverLimits() || acked != state_.acked ||
         state_.full_events != saved_counters_[2];
}

Status Writer::Commit(std::vector<Record>* batch,
                      const std::vector<uint64_t>& acked) {
  if (batch->size() <= max_txn_rows_) return CommitChunk(batch, acked);
  // A transaction's pages pass through the WAL before a checkpoint moves
  // them into buffer.db: bound it so that the WAL fits beside the file.
  Status first_error;
  std::vector<Record> chunk;
  for (size_t i = 0; i < batch->size(); i += max_txn_rows_) {
    size_t end = std::min(batch->size(), i + max_txn_rows_);
    chunk.assign(std::make_move_iterator(batch->begin() + static_cast<ptrdiff_t>(i)),
                 std::make_move_iterator(batch->begin() + static_cast<ptrdiff_t>(end)));
    Status s = CommitChunk(&chunk, acked);
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  return first_error;
}

Status Writer::CommitChunk(std::vector<Record>* batch, const std::vector<uint64_t>& acked) {
  Status s;
  bool made_room = false;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    s = TryCommit(batch, acked);
    if (s.ok()) {
      ++state_.commits;
      state_.committed_events += batch->size();
      for (const Record& r : *batch) {
        state_.committed_bytes += r.body.size() + r.sensor.size() + kRowOverhead;
      }
      state_.last_commit_wall_us = clock_.NowWallUs();
      WatchSpace();
      return s;
    }
    ++state_.commit_failures;
    if (s.code() != StatusCode::kFull) break;
    ++state_.full_events;
    if (!made_room) {
      // First give back the reserve and the WAL's space: the WAL may be
      // what filled the disk.
      full_log_.Log("disk full (" + s.message() + "); truncating the WAL and retrying");
      MakeRoom();
      made_room = true;
      continue;
    }
    if (state_.txn.events == 0) break;
    // Then hold the ring below what fits: evict the oldest 10% and keep
    // the byte limit there until the disk has room again.
    cap_bytes_ = std::min(cap_bytes_, state_.txn.bytes - state_.txn.bytes / 10);
    full_log_.Log("disk full (" + s.message() + "); evicting the oldest 10% and holding the "
                  "buffer at " + std::to_string(cap_bytes_ >> 10) + " KiB");
    Status e = EvictForFull(acked);
    if (!e.ok()) full_log_.Log("eviction on a full disk failed: " + e.ToString());
    MakeRoom();
  }
  state_.failed_events += batch->size();
  fail_log_.Log("commit failed, dropped " + std::to_string(batch->size()) +
                " events: " + s.ToString());
  return s;
}

Status Writer::TryCommit(std::vector<Record>* batch,
                         const std::vector<uint64_t>& acked) {
  if (!batch->empty()) {
    SLUICE_RETURN_IF_ERROR(seq_.Cover(state_.txn.next_seq + batch->size() - 1));
  }
  TxnState saved = state_.txn;
  SLUICE_RETURN_IF_ERROR(InTransaction(acked, [&] {
    Status s = InsertAll(batch, acked);
    if (s.ok() && OverLimits()) s = EvictTo(options_.max_events, cap_bytes_, acked, false);
    return s;
  }));
  force_ = false;
  if (state_.txn.evicted_total != saved.evicted_total ||
      (state_.first_seq == 0) != (state_.txn.events == 0)) {
    Status f = RefreshFirst();
    if (!f.ok()) LogError("buffer", "reading the first event: " + f.ToString());
  }
  return Status::Ok();
}

Status Writer::InsertAll(std::vector<Record>* batch,
                         const std::vector<uint64_t>& acked) {
  sqlite3_stmt* st = insert_.get();
  TxnState& t = state_.txn;
  size_t since_check = 0;
  for (Record& r : *batch) {
    uint64_t seq = t.next_seq;
    SetEncodedSeq(&r.body, seq);
    sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(seq));
    sqlite3_bind_int64(st, 2, r.ts_us);
    sqlite3_bind_text(st, 3, r.sensor.data(), static_cast<int>(r.sensor.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int(st, 4, r.kind);
    sqlite3_bind_int(st, 5, r.priority);
    sqlite3_bind_blob(st, 6, r.body.data(), static_cast<int>(r.body.size()),
                      SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) {
      Status s = sql::Error(db_.get(), rc, "insert");
      insert_.Reset();
      return s;
    }
    sqlite3_reset(st);
    ++t.next_seq;
    ++t.events;
    t.bytes += r.body.size() + r.sensor.size() + kRowOverhead;
    t.last_ts_us = r.ts_us;
    if (++since_check >= kEvictCheckRows) {
      since_check = 0;
      if (OverLimits()) {
        SLUICE_RETURN_IF_ERROR(
            EvictTo(options_.max_events, cap_bytes_, acked, false));
      }
    }
  }
  insert_.Reset();
  return Status::Ok();
}

Status Writer::EvictTo(uint64_t max_events, uint64_t max_bytes,
                       const std::vector<uint64_t>& acked, bool full) {
  TxnState& t = state_.txn;
  uint64_t need_n = t.events > max_events ? t.events - max_events : 0;
  uint64_t need_b = t.bytes > max_bytes ? t.bytes - max_bytes : 0;
  if (need_n == 0 && need_b == 0) return Status::Ok();
  // Rows come in eviction order: (priority, seq). What is evicted is a
  // prefix of that order, i.e. per priority, every seq up to some bound.
  std::vector<std::pair<int, uint64_t>> ranges;
  uint64_t n = 0, b = 0;
  int prio = 0;
  uint64_t max_seq = 0;
  bool have = false;
  sqlite3_stmt* st = scan_.get();
  int rc = SQLITE_ROW;
  while (n < need_n || b < need_b) {
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) break;
    uint64_t seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    int p = sqlite3_column_int(st, 1);
    uint64_t size = static_cast<uint64_t>(sqlite3_column_int64(st, 2)) + kRowOverhead;
    if (have && p != prio) ranges.emplace_back(prio, max_seq);
    prio = p;
    max_seq = seq;
    have = true;
    ++n;
    b += size;
    for (size_t u = 0; u < acked.size() && u < t.evicted_unsent.size(); ++u) {
      if (seq > acked[u]) ++t.evicted_unsent[u];
    }
  }
  Status s;
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) s = sql::Error(db_.get(), rc, "evict scan");
  sqlite3_reset(st);
  SLUICE_RETURN_IF_ERROR(s);
  if (have) ranges.emplace_back(prio, max_seq);
  for (const auto& r : ranges) {
    sqlite3_bind_int(delete_range_.get(), 1, r.first);
    sqlite3_bind_int64(delete_range_.get(), 2, static_cast<sqlite3_int64>(r.second));
    SLUICE_RETURN_IF_ERROR(delete_range_.Run("evict"));
  }
  t.events -= std::min(n, t.events);
  t.bytes -= std::min(b, t.bytes);
  t.evicted_total += n;
  if (full) t.evicted_full += n;
  return Status::Ok();
}

Status Writer::EvictForFull(const std::vector<uint64_t>& acked) {
  uint64_t drop = std::max<uint64_t>(1, state_.txn.events / 10);
  SLUICE_RETURN_IF_ERROR(InTransaction(acked, [&] {
    return EvictTo(state_.txn.events - drop, UINT64_MAX, acked, true);
  }));
  return RefreshFirst();
}

Status Writer::InTransaction(const std::vector<uint64_t>& acked,
                             const std::function<Status()>& body) {
  TxnState saved = state_.txn;
  Status s = begin_.Run("begin");
  if (s.ok()) s = body();
  if (s.ok()) s = WriteMeta(acked);
  if (s.ok()) s = commit_.Run("commit");
  if (!s.ok()) {
    Status r = Rollback();
    if (!r.ok()) LogError("buffer", "rollback: " + r.ToString());
    state_.txn = std::move(saved);
    return s;
  }
  state_.acked = acked;
  saved_unsent_ = state_.txn.evicted_unsent;
  saved_counters_[0] = state_.txn.evicted_total;
  saved_counters_[1] = state_.txn.evicted_full;
  saved_counters_[2] = state_.full_events;
  saved_counters_[3] = state_.corrupt_recoveries;
  return Status::Ok();
}

Status Writer::WriteMeta(const std::vector<uint64_t>& acked) {
  const TxnState& t = state_.txn;
  sqlite3_stmt* m = meta_.get();
  sqlite3_bind_int64(m, 1, static_cast<sqlite3_int64>(t.next_seq));
  sqlite3_bind_int64(m, 2, static_cast<sqlite3_int64>(t.events));
  sqlite3_bind_int64(m, 3, static_cast<sqlite3_int64>(t.bytes));
  SLUICE_RETURN_IF_ERROR(meta_.Run("write meta"));
  for (size_t i = 0; i < options_.upstreams.size() && i < acked.size(); ++i) {
    if (acked[i] == state_.acked[i] && t.evicted_unsent[i] == saved_unsent_[i] &&
        !force_) {
      continue;
    }
    const std::string& name = options_.upstreams[i];
    sqlite3_stmt* c = cursor_.get();
    sqlite3_bind_text(c, 1, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
    sqlite3_bind_int64(c, 2, static_cast<sqlite3_int64>(acked[i]));
    sqlite3_bind_int64(c, 3, static_cast<sqlite3_int64>(t.evicted_unsent[i]));
    SLUICE_RETURN_IF_ERROR(cursor_.Run("write cursor"));
  }
  const uint64_t values[4] = {t.evicted_total, t.evicted_full,
                              state_.full_events, state_.corrupt_recoveries};
  for (int i = 0; i < 4; ++i) {
    if (values[i] == saved_counters_[i] && !force_) continue;
    sqlite3_stmt* c = counter_.get();
    sqlite3_bind_text(c, 1, kCounterNames[i], -1, SQLITE_STATIC);
    sqlite3_bind_int64(c, 2, static_cast<sqlite3_int64>(values[i]));
    SLUICE_RETURN_IF_ERROR(counter_.Run("write counter"));
  }
  return Status::Ok();
}

Status Writer::RefreshFirst() {
  int rc = first_.Step();
  Status s;
  if (rc == SQLITE_ROW) {
    state_.first_seq = static_cast<uint64_t>(sqlite3_column_int64(first_.get(), 0));
    state_.first_ts_us = sqlite3_column_int64(first_.get(), 1);
  } else if (rc == SQLITE_DONE) {
    state_.first_seq = 0;
    state_.first_ts_us = 0;
  } else {
    s = sql::Error(db_.get(), rc, "first event");
  }
  first_.Reset();
  return s;
}

Status Writer::Rollback() {
  if (db_.get() == nullptr || sqlite3_get_autocommit(db_.get())) return Status::Ok();
  return rollback_.Run("rollback");
}

Status Writer::Close() {
  if (db_.get() != nullptr) {
    // Best effort: a reader still open keeps part of the WAL.
    sqlite3_exec(db_.get(), "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  }
  Status s;
  for (sql::Stmt* st : {&begin_, &commit_, &rollback_, &insert_, &scan_,
                        &delete_range_, &meta_, &cursor_, &counter_, &first_}) {
    Status f = st->Finalize();
    if (s.ok()) s = f;
  }
  Status c = db_.Close();
  if (s.ok()) s = c;
  if (s.ok()) s = run_.Remove();
  return s;
}

}  // namespace sluice
