// Writer: opening buffer.db, the seq floor at start-up, loading the state,
// noticing a deleted or replaced file, and closing.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "buffer/internal/store.h"
#include "buffer/internal/writer.h"

namespace sluice {
namespace {

constexpr int64_t kIdentityCheckUs = 1000000;

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

const char* DurabilityText(Durability d) {
  return d == Durability::kOff ? "off" : d == Durability::kFull ? "full" : "normal";
}

}  // namespace

const char* const kWriterCounterNames[5] = {"evicted_total", "evicted_full", "full_events",
                                            "corrupt_recoveries", "file_replacements"};

Writer::Writer(const RingOptions& options, Clock& clock)
    : options_(options),
      clock_(clock),
      seq_(options.data_dir, options.seq_reserve_block),
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
  SLUICE_RETURN_IF_ERROR(w->OpenDb(&created, &quarantined));
  SLUICE_RETURN_IF_ERROR(w->Init(created, quarantined));
  return w;
}

Status Writer::OpenDb(bool* created, uint64_t* quarantined) {
  *quarantined = 0;
  Status s = OpenChecked(options_.data_dir, clock_, options_.integrity_check_budget_us, &db_,
                         created);
  if (s.code() == StatusCode::kCorruption) {
    Status c = db_.Close();
    if (!c.ok()) LogError("buffer", "close of corrupt buffer.db: " + c.ToString());
    std::string moved;
    SLUICE_RETURN_IF_ERROR(Quarantine(options_.data_dir, clock_, &moved, quarantined));
    LogError("buffer", "CORRUPT DATABASE: " + DbPath(options_.data_dir) + " is unusable (" +
                           s.message() + "); moved it to " + moved +
                           " and started a fresh buffer");
    s = OpenChecked(options_.data_dir, clock_, options_.integrity_check_budget_us, &db_,
                    created);
    *created = true;
  }
  SLUICE_RETURN_IF_ERROR(s);
  uint64_t cap = options_.max_file_bytes != 0 ? options_.max_file_bytes
                                              : HardCapBytes(options_.max_bytes);
  SLUICE_RETURN_IF_ERROR(ConfigureWriter(db_.get(), options_.durability, cap));
  return RememberIdentity();
}

Status Writer::Init(bool created, uint64_t quarantined) {
  SLUICE_RETURN_IF_ERROR(SizeForDisk());
  SLUICE_RETURN_IF_ERROR(Prepare());
  SLUICE_RETURN_IF_ERROR(LoadState());
  const bool quarantined_now = quarantined > 0;
  if (quarantined > state_.corrupt_recoveries) {
    state_.corrupt_recoveries = quarantined;
    force_ = true;
  }
  SLUICE_RETURN_IF_ERROR(RestoreSeqFloor(created, quarantined_now));
  SLUICE_RETURN_IF_ERROR(run_.Create(last_seq()));
  if (OverLimits()) force_ = true;
  if (force_) {
    std::vector<Record> none;
    SLUICE_RETURN_IF_ERROR(Commit(&none, state_.acked));
  }
  return Status::Ok();
}

Status Writer::RestoreSeqFloor(bool created, bool quarantined_now) {
  RunMarker::Previous prev;
  SLUICE_RETURN_IF_ERROR(run_.Check(&prev));
  const uint64_t db_last = last_seq();
  // Why this start cannot vouch for every seq the last run handed out.
  std::string unsure;
  if (quarantined_now) {
    unsure = "buffer.db was corrupt and set aside";
  } else if (created && (seq_.reserved() > 0 || prev.exists)) {
    unsure = "buffer.db was missing";
  } else if (prev.exists && !prev.same_boot && options_.durability != Durability::kFull) {
    unsure = std::string("the machine went down (power loss or reset) with durability ") +
             DurabilityText(options_.durability);
  } else if (prev.exists && prev.same_boot && !prev.marks_valid) {
    unsure = "the previous run crashed and its run marker (buffer.run) is unreadable";
  } else if (prev.exists && prev.same_boot && prev.committed > db_last) {
    unsure = "the previous run crashed having committed up to seq " +
             std::to_string(prev.committed) + " but buffer.db holds only up to " +
             std::to_string(db_last) + " (its WAL was lost or damaged)";
  }
  if (!unsure.empty()) {
    // The marks of a crash on this boot are exact (rewritten before and
    // after every commit, a failed rewrite fails the commit); otherwise the
    // reservation bounds every seq that may have been handed out.
    uint64_t floor = prev.exists && prev.same_boot && prev.marks_valid
                         ? std::max(prev.reserved, prev.committed)
                         : seq_.reserved();
    if (prev.marks_valid) floor = std::max({floor, prev.reserved, prev.committed});
    if (floor > db_last) {
      const uint64_t first = db_last + 1;
      state_.txn.next_seq = floor + 1;
      LogError("buffer", unsure + ": seqs " + std::to_string(first) + ".." +
                             std::to_string(floor) +
                             " may have been handed out and lost; continuing at seq " +
                             std::to_string(state_.txn.next_seq) + " so that none is reused");
      SLUICE_RETURN_IF_ERROR(RecordGap(first, floor, unsure));
    } else if (floor == 0 && db_last == 0 && (quarantined_now || prev.exists)) {
      LogError("buffer", unsure + ", and no seq floor survives (buffer.seq and buffer.floor "
                                  "are missing or damaged): numbering starts again at 1");
    } else {
      LogWarn("buffer", unsure + "; no seq above " + std::to_string(db_last) +
                            " was reserved, continuing at " + std::to_string(db_last + 1));
    }
  }
  // Rewrite a damaged copy (never below what was committed).
  if (seq_.damaged()) {
    SLUICE_RETURN_IF_ERROR(seq_.Repair(last_seq()));
    LogWarn("buffer", "rewrote the seq floor files (buffer.seq, buffer.floor) at " +
                          std::to_string(seq_.reserved()));
  }
  return Status::Ok();
}

Status Writer::RecordGap(uint64_t first, uint64_t last, const std::string& reason) {
  std::vector<uint64_t> acked = state_.acked;
  Status s = InTransaction(acked, [&] {
    sql::Stmt st;
    SLUICE_RETURN_IF_ERROR(st.Prepare(
        db_.get(), "INSERT OR REPLACE INTO gaps(first_seq, last_seq, reason, at_us) "
                   "VALUES(?1, ?2, ?3, ?4)"));
    sqlite3_bind_int64(st.get(), 1, static_cast<sqlite3_int64>(first));
    sqlite3_bind_int64(st.get(), 2, static_cast<sqlite3_int64>(last));
    sqlite3_bind_text(st.get(), 3, reason.data(), static_cast<int>(reason.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st.get(), 4, clock_.NowWallUs());
    return st.Run("record gap");
  });
  SLUICE_RETURN_IF_ERROR(s);
  return LoadGaps();
}

Status Writer::LoadGaps() {
  GapSummary& g = state_.gaps;
  g = GapSummary();
  std::vector<SeqGap> gaps;
  SLUICE_RETURN_IF_ERROR(ReadGaps(db_.get(), &gaps));
  for (SeqGap& gap : gaps) {
    ++g.ranges;
    g.seqs += gap.last_seq >= gap.first_seq ? gap.last_seq - gap.first_seq + 1 : 0;
    g.last_first = gap.first_seq;
    g.last_last = gap.last_seq;
    g.last_reason = std::move(gap.reason);
    g.last_at_us = gap.at_us;
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
      db, (std::string("SELECT seq, priority, ") + kRowPayloadSql +
           " FROM events INDEXED BY events_evict ORDER BY priority, seq")
              .c_str()));
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
  Meta meta;
  SLUICE_RETURN_IF_ERROR(ReadMeta(db, &meta));
  if (meta.next_seq != -1) {
    t.next_seq = std::max<uint64_t>(static_cast<uint64_t>(meta.next_seq), 1);
  }
  if (meta.row_count != -1) t.events = static_cast<uint64_t>(meta.row_count);
  if (meta.row_bytes != -1) t.bytes = static_cast<uint64_t>(meta.row_bytes);
  std::map<std::string, int64_t> counters;
  SLUICE_RETURN_IF_ERROR(ReadCounters(db, &counters));
  uint64_t* const loaded[5] = {&t.evicted_total, &t.evicted_full, &state_.full_events,
                               &state_.corrupt_recoveries, &state_.file_replacements};
  for (size_t i = 0; i < 5; ++i) {
    auto it = counters.find(kWriterCounterNames[i]);
    if (it != counters.end()) *loaded[i] = static_cast<uint64_t>(it->second);
    saved_counters_[i] = *loaded[i];
  }
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
  SLUICE_RETURN_IF_ERROR(LoadGaps());
  return RefreshFirst();
}

Status Writer::RememberIdentity() {
  struct stat st;
  const std::string path = DbPath(options_.data_dir);
  if (::stat(path.c_str(), &st) != 0) {
    return IoError("stat " + path + ": " + std::strerror(errno));
  }
  db_dev_ = st.st_dev;
  db_ino_ = st.st_ino;
  next_identity_check_us_ = clock_.NowMonotonicUs() + kIdentityCheckUs;
  return Status::Ok();
}

bool Writer::CheckFileIdentity() {
  const int64_t now = clock_.NowMonotonicUs();
  if (now < next_identity_check_us_ || db_.get() == nullptr) return false;
  next_identity_check_us_ = now + kIdentityCheckUs;
  struct stat st;
  const std::string path = DbPath(options_.data_dir);
  const bool present = ::stat(path.c_str(), &st) == 0;
  if (present && st.st_dev == db_dev_ && st.st_ino == db_ino_) return false;
  LogError("buffer", path + (present ? " was replaced by another file" : " was deleted") +
                         " while sluiced had it open; moving the open buffer into a new " +
                         path);
  Status s = Rescue();
  if (!s.ok()) {
    LogError("buffer", "moving the buffer failed (" + s.ToString() +
                           "); the events it held are lost");
    return false;
  }
  return true;
}

Status Writer::Rescue() {
  const std::string path = DbPath(options_.data_dir);
  const std::string rescue = path + ".rescue";
  ::unlink(rescue.c_str());
  // The open connection still reads the old inode (and its WAL): copy it.
  sql::Stmt vac;
  Status s = vac.Prepare(db_.get(), "VACUUM INTO ?1");
  if (s.ok()) {
    sqlite3_bind_text(vac.get(), 1, rescue.data(), static_cast<int>(rescue.size()),
                      SQLITE_STATIC);
    s = vac.Run("VACUUM INTO");
  }
  Status f = vac.Finalize();
  if (s.ok()) s = f;
  bool copied = s.ok();
  if (!copied) {
    LogError("buffer", "copying the open buffer failed: " + s.ToString());
    ::unlink(rescue.c_str());
  }
  const std::vector<uint64_t> acked = state_.acked;
  const uint64_t next_seq = state_.txn.next_seq;
  SLUICE_RETURN_IF_ERROR(CloseDb());
  // The old file's WAL and shm are still at their names (a reader kept
  // them): they must not meet the new file. Their content is in the copy.
  for (const char* suffix : {"-wal", "-shm"}) {
    if (::unlink((path + suffix).c_str()) != 0 && errno != ENOENT) {
      LogError("buffer", "removing the old " + path + suffix + ": " + std::strerror(errno));
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    std::string moved;
    uint64_t n = 0;
    SLUICE_RETURN_IF_ERROR(Quarantine(options_.data_dir, clock_, &moved, &n));
    LogError("buffer", "set the replacing file aside as " + moved);
  }
  if (copied) {
    Status installed = FsyncPath(rescue);
    if (installed.ok() && ::rename(rescue.c_str(), path.c_str()) != 0) {
      installed = IoError("rename " + rescue + ": " + std::strerror(errno));
    }
    if (!installed.ok()) {
      LogError("buffer", "installing " + rescue + ": " + installed.message());
      copied = false;
    }
    SLUICE_RETURN_IF_ERROR(FsyncDir(options_.data_dir));
  }
  bool created = false;
  uint64_t quarantined = 0;
  SLUICE_RETURN_IF_ERROR(OpenDb(&created, &quarantined));
  SLUICE_RETURN_IF_ERROR(SizeForDisk());
  SLUICE_RETURN_IF_ERROR(Prepare());
  SLUICE_RETURN_IF_ERROR(LoadState());
  ++state_.file_replacements;
  force_ = true;
  if (state_.txn.next_seq < next_seq) {
    // Nothing could be carried over: continue above every seq handed out.
    const uint64_t first = state_.txn.next_seq;
    state_.txn.next_seq = std::max(next_seq, seq_.reserved() + 1);
    SLUICE_RETURN_IF_ERROR(RecordGap(first, state_.txn.next_seq - 1,
                                     "buffer.db was deleted or replaced while open"));
  }
  std::vector<Record> none;
  return Commit(&none, acked);
}

Status Writer::CloseDb() {
  if (db_.get() != nullptr) {
    // Best effort: a reader still open keeps part of the WAL.
    sqlite3_exec(db_.get(), "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  }
  Status s;
  for (sql::Stmt* st : {&begin_, &commit_, &rollback_, &insert_, &scan_, &delete_range_,
                        &meta_, &cursor_, &counter_, &first_}) {
    Status f = st->Finalize();
    if (s.ok()) s = f;
  }
  Status c = db_.Close();
  if (s.ok()) s = c;
  return s;
}

Status Writer::Close() {
  Status s = CloseDb();
  if (s.ok()) s = run_.Remove();
  return s;
}

}  // namespace sluice
