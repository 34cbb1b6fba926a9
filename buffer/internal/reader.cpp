#include "buffer/internal/reader.h"

#include <sys/stat.h>

#include <cerrno>

#include "buffer/codec.h"
#include "buffer/internal/store.h"
#include "common/log.h"

namespace sluice {

bool EventFromRow(sqlite3_stmt* st, StoredEvent* out) {
  out->seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
  const void* body = sqlite3_column_blob(st, 4);
  const size_t len = static_cast<size_t>(sqlite3_column_bytes(st, 4));
  if (!VerifyEncodedEvent(body, len)) return false;
  out->ts_us = sqlite3_column_int64(st, 1);
  out->kind = sqlite3_column_int(st, 2);
  const unsigned char* sensor = sqlite3_column_text(st, 3);
  out->sensor.assign(reinterpret_cast<const char*>(sensor),
                     static_cast<size_t>(sqlite3_column_bytes(st, 3)));
  body = sqlite3_column_blob(st, 4);  // column_text may not move it, but
  out->body.assign(static_cast<const char*>(body), len);  // be safe
  return true;
}

ReaderImpl::ReaderImpl(std::shared_ptr<std::atomic<uint64_t>> corrupt_rows,
                       std::shared_ptr<std::atomic<uint64_t>> generation)
    : corrupt_rows_(std::move(corrupt_rows)), generation_(std::move(generation)) {
  if (generation_) seen_generation_ = generation_->load();
}

ReaderImpl::~ReaderImpl() {
  Status s = read_.Finalize();
  if (s.ok()) s = db_.Close();
  if (!s.ok()) LogError("buffer", "closing a reader: " + s.ToString());
}

Status ReaderImpl::Reopen() {
  SLUICE_RETURN_IF_ERROR(read_.Finalize());
  SLUICE_RETURN_IF_ERROR(db_.Close());
  return Init(path_, allow_immutable_);
}

Status ReaderImpl::Init(const std::string& path, bool allow_immutable) {
  path_ = path;
  allow_immutable_ = allow_immutable;
  if (allow_immutable) {
    SLUICE_RETURN_IF_ERROR(OpenReadOnlyDb(path, &db_));
  } else {
    SLUICE_RETURN_IF_ERROR(db_.Open(path, SQLITE_OPEN_READONLY));
    SLUICE_RETURN_IF_ERROR(ConfigureReader(db_.get()));
  }
  return read_.Prepare(db_.get(),
                       "SELECT seq, ts_us, kind, sensor, body FROM events "
                       "WHERE seq > ?1 ORDER BY seq");
}

Status ReaderImpl::ReadAfter(uint64_t after_seq, size_t max_events,
                             std::vector<StoredEvent>* out) {
  if (max_events == 0) return Status::Ok();
  if (generation_ && generation_->load() != seen_generation_) {
    seen_generation_ = generation_->load();
    SLUICE_RETURN_IF_ERROR(Reopen());
  }
  sqlite3_stmt* st = read_.get();
  sqlite3_bind_int64(st, 1, static_cast<sqlite3_int64>(after_seq));
  size_t got = 0;
  int rc = SQLITE_DONE;
  // No LIMIT in SQL: corrupt rows are skipped, and a caller must still get
  // max_events good ones when there are that many.
  while (got < max_events && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    out->emplace_back();
    if (!EventFromRow(st, &out->back())) {
      const uint64_t seq = out->back().seq;
      out->pop_back();
      corrupt_rows_->fetch_add(1, std::memory_order_relaxed);
      if (++logged_corrupt_ <= 10) {
        LogError("buffer", "skipping corrupt event body at seq " +
                               std::to_string(seq));
      }
      continue;
    }
    ++got;
  }
  Status s;
  if (got < max_events && rc != SQLITE_DONE) {
    s = sql::Error(db_.get(), rc, "read events");
  }
  sqlite3_reset(st);
  return s;
}

StatusOr<std::unique_ptr<RingReader>> RingReader::Open(
    const std::string& data_dir) {
  std::string path = DbPath(data_dir);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return DataFileError(path, errno);
  auto r = std::make_unique<ReaderImpl>(
      std::make_shared<std::atomic<uint64_t>>(0));
  SLUICE_RETURN_IF_ERROR(r->Init(path, /*allow_immutable=*/true));
  return std::unique_ptr<RingReader>(std::move(r));
}

}  // namespace sluice
