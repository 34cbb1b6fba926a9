// Writer: the commit path (group commit, seq assignment, eviction, cursor
// and counter persistence, the full-disk retries).
#include <algorithm>
#include <functional>
#include <utility>

#include "buffer/codec.h"
#include "buffer/internal/store.h"
#include "buffer/internal/writer.h"
#include "common/log.h"

namespace sluice {
namespace {

constexpr int kMaxAttempts = 8;
constexpr size_t kEvictCheckRows = 256;

}  // namespace

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
  std::vector<Record> chunk;
  for (size_t i = 0; i < batch->size(); i += max_txn_rows_) {
    const auto from = batch->begin() + static_cast<ptrdiff_t>(i);
    const auto to = batch->begin() + static_cast<ptrdiff_t>(std::min(batch->size(), i + max_txn_rows_));
    chunk.assign(std::make_move_iterator(from), std::make_move_iterator(to));
    Status s = CommitChunk(&chunk, acked);
    if (!s.ok()) {
      // Hand back exactly what was not committed, in order.
      std::move(chunk.begin(), chunk.end(), from);
      batch->erase(batch->begin(), from);
      return s;
    }
  }
  return Status::Ok();
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
  fail_log_.Log("commit failed, holding " + std::to_string(batch->size()) +
                " events to retry: " + s.ToString());
  return s;
}

Status Writer::TryCommit(std::vector<Record>* batch,
                         const std::vector<uint64_t>& acked) {
  if (!batch->empty()) {
    const uint64_t last = state_.txn.next_seq + batch->size() - 1;
    SLUICE_RETURN_IF_ERROR(seq_.Cover(last));
    // A start after a crash trusts this mark as the bound of what may have
    // been handed out: no commit without it.
    SLUICE_RETURN_IF_ERROR(run_.MarkReserved(last));
  }
  TxnState saved = state_.txn;
  SLUICE_RETURN_IF_ERROR(InTransaction(acked, [&] {
    Status s = InsertAll(batch, acked);
    if (s.ok() && OverLimits()) s = EvictToLimits(acked);
    return s;
  }));
  if (!batch->empty()) {
    Status m = run_.MarkCommitted(last_seq());
    if (!m.ok()) {
      // A stale mark could hide a lost WAL from the next start: drop the
      // marks, so that it falls back to the reservation.
      LogError("buffer", "run marker: " + m.ToString() + "; dropping its marks");
      (void)run_.DropMarks();
    }
  }
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
      if (OverLimits()) SLUICE_RETURN_IF_ERROR(EvictToLimits(acked));
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

Status Writer::EvictToLimits(const std::vector<uint64_t>& acked) {
  // First to the configured limits; what a byte limit lowered for a nearly
  // full disk takes beyond that counts as evicted for the full disk.
  SLUICE_RETURN_IF_ERROR(EvictTo(options_.max_events, options_.max_bytes, acked, false));
  if (cap_bytes_ >= options_.max_bytes) return Status::Ok();
  return EvictTo(options_.max_events, cap_bytes_, acked, true);
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
  saved_counters_[4] = state_.file_replacements;
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
  const uint64_t values[5] = {t.evicted_total, t.evicted_full, state_.full_events,
                              state_.corrupt_recoveries, state_.file_replacements};
  for (int i = 0; i < 5; ++i) {
    if (values[i] == saved_counters_[i] && !force_) continue;
    sqlite3_stmt* c = counter_.get();
    sqlite3_bind_text(c, 1, kWriterCounterNames[i], -1, SQLITE_STATIC);
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

}  // namespace sluice
