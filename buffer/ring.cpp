// Ring: the producer queue, the writer thread and its group commits.
//
// Append() pushes onto a bounded queue under mu_. The writer thread wakes
// when the queue becomes non-empty, waits until commit_interval has passed
// since the oldest queued event arrived (or a Flush()/Stop() asks), then
// swaps the whole queue out and commits it in one transaction. Changed
// upstream cursors ride along with every commit; with no events they are
// written at most every kCursorIdleSave (1 s).
//
// A commit that fails (storage error, a full disk with nothing left to
// evict) loses nothing: the writer holds what it could not commit, counts
// it against the queue's capacity (so producers wait: stream senders are
// held back), reports the failure in Stats() and retries with capped
// backoff until storage works again. Only what is still held when the ring
// stops is lost (failed_events).
//
// durability normal: a sync thread fsyncs the WAL every sync_interval, so a
// power cut loses at most that much of what was committed.
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "buffer/codec.h"
#include "buffer/internal/reader.h"
#include "buffer/internal/store.h"
#include "buffer/internal/writer.h"
#include "common/log.h"
#include "common/units.h"

namespace sluice {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kCursorIdleSave = std::chrono::seconds(1);
constexpr auto kRetryMin = std::chrono::milliseconds(100);
constexpr auto kRetryMax = std::chrono::seconds(5);
// After a batch this large, freed heap is handed back to the kernel once
// the queue has drained (a burst must not leave its peak resident).
constexpr size_t kTrimAfterBatch = 1024;
constexpr auto kTrimEvery = std::chrono::seconds(1);

// What a queued event costs in memory.
size_t RecordBytes(const Record& r) { return sizeof(Record) + r.body.size() + r.sensor.size(); }

class RingImpl final : public Ring {
 public:
  RingImpl(const RingOptions& options, std::unique_ptr<Writer> writer, Clock& clock)
      : options_(options),
        clock_(clock),
        writer_(std::move(writer)),
        acked_(options.upstreams.size()),
        corrupt_rows_(std::make_shared<std::atomic<uint64_t>>(0)),
        generation_(std::make_shared<std::atomic<uint64_t>>(0)) {
    const WriterState& ws = writer_->state();
    for (size_t i = 0; i < acked_.size(); ++i) acked_[i] = ws.acked[i];
    last_seq_ = writer_->last_seq();
    Publish();
    queue_.reserve(std::min<size_t>(options.queue_capacity, 4096));
  }

  ~RingImpl() override {
    Status s = Stop();
    if (!s.ok()) LogError("buffer", "stop: " + s.ToString());
  }

  void Start() {
    thread_ = std::thread([this] { Run(); });
    if (options_.durability == Durability::kNormal && options_.sync_interval_us > 0) {
      sync_thread_ = std::thread([this] { SyncLoop(); });
    }
  }

  Status Append(Record record, int64_t timeout_us) override {
    if (!VerifyEncodedEvent(record.body.data(), record.body.size())) {
      return InvalidArgument("buffer: record body is not an encoded Event");
    }
    std::unique_lock<std::mutex> lk(mu_);
    if (stopping_) return Unavailable("buffer: ring is stopping");
    if (QueueFull()) {
      if (timeout_us > 0) {
        space_cv_.wait_for(lk, std::chrono::microseconds(timeout_us),
                           [&] { return stopping_ || !QueueFull(); });
      }
      if (stopping_) return Unavailable("buffer: ring is stopping");
      if (QueueFull()) {
        return Unavailable(held_ > 0 ? "buffer: queue full (commits failing: " +
                                           failing_error_ + ")"
                                     : std::string("buffer: queue full"));
      }
    }
    if (queue_.empty()) {
      first_enqueue_ = SteadyClock::now();
      writer_cv_.notify_one();
    }
    queued_bytes_ += RecordBytes(record);
    queue_.push_back(std::move(record));
    ++enqueued_;
    return Status::Ok();
  }

  void CountDropped(uint64_t n) override { dropped_.fetch_add(n, std::memory_order_relaxed); }

  Status Flush() override {
    std::unique_lock<std::mutex> lk(mu_);
    uint64_t target = enqueued_;
    if (attempted_ >= target) return last_status_;
    if (flush_target_ < target) flush_target_ = target;
    writer_cv_.notify_one();
    done_cv_.wait(lk, [&] { return attempted_ >= target || writer_done_; });
    if (attempted_ < target) return Unavailable("buffer: ring stopped");
    return last_status_;
  }

  uint64_t LastSeq() const override { return last_seq_.load(); }

  uint64_t WaitForCommit(uint64_t after_seq, int64_t timeout_us) override {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait_for(lk, std::chrono::microseconds(std::max<int64_t>(timeout_us, 0)),
                      [&] { return last_seq_.load() > after_seq || stopping_; });
    return last_seq_.load();
  }

  void Ack(size_t index, uint64_t seq) override {
    if (index >= acked_.size()) return;
    std::atomic<uint64_t>& a = acked_[index];
    uint64_t cur = a.load();
    while (seq > cur && !a.compare_exchange_weak(cur, seq)) {
    }
  }

  uint64_t Cursor(size_t index) const override {
    return index < acked_.size() ? acked_[index].load() : 0;
  }

  StatusOr<std::unique_ptr<RingReader>> NewReader() override {
    auto r = std::make_unique<ReaderImpl>(corrupt_rows_, generation_);
    SLUICE_RETURN_IF_ERROR(r->Init(DbPath(options_.data_dir), /*allow_immutable=*/false));
    return std::unique_ptr<RingReader>(std::move(r));
  }

  RingStats Stats() const override {
    RingStats s;
    {
      std::lock_guard<std::mutex> lk(stats_mu_);
      s = stats_;
    }
    s.dropped = dropped_.load();
    {
      std::lock_guard<std::mutex> lk(mu_);
      s.held_events = held_;
      s.failed_events += lost_at_stop_;
      s.commit_failing_since_us = failing_since_us_;
      if (!failing_error_.empty()) s.last_commit_error = failing_error_;
    }
    {
      std::lock_guard<std::mutex> lk(sync_mu_);
      s.synced_seq = synced_seq_;
      s.last_sync_us = last_sync_us_;
      s.sync_failures = sync_failures_;
    }
    s.corrupt_rows = corrupt_rows_->load();
    if (writer_exited_.load()) {
      s.writer_idle_us = -1;
    } else {
      auto idle = SteadyClock::now().time_since_epoch().count() - heartbeat_.load();
      s.writer_idle_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             SteadyClock::duration(std::max<SteadyClock::rep>(0, idle)))
                             .count();
    }
    for (size_t i = 0; i < s.upstreams.size() && i < acked_.size(); ++i) {
      s.upstreams[i].acked_seq = acked_[i].load();
    }
    s.file_bytes = BufferFileBytes(options_.data_dir);
    return s;
  }

  Status Stop() override {
    std::lock_guard<std::mutex> stop_lk(stop_mu_);
    if (stopped_) return stop_status_;
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopping_ = true;
    }
    writer_cv_.notify_all();
    space_cv_.notify_all();
    done_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    {
      std::lock_guard<std::mutex> lk(sync_mu_);
      sync_stop_ = true;
    }
    sync_cv_.notify_all();
    if (sync_thread_.joinable()) sync_thread_.join();
    stop_status_ = writer_->Close();
    stopped_ = true;
    return stop_status_;
  }

 private:
  std::vector<uint64_t> AckedSnapshot() const {
    std::vector<uint64_t> v(acked_.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = acked_[i].load();
    return v;
  }

  // Writer thread only (and the constructor).
  void Publish() {
    const WriterState& ws = writer_->state();
    std::lock_guard<std::mutex> lk(stats_mu_);
    RingStats& s = stats_;
    s.events = ws.txn.events;
    s.bytes = ws.txn.bytes;
    s.first_seq = ws.first_seq;
    s.last_seq = ws.txn.next_seq - 1;
    s.first_ts_us = ws.first_ts_us;
    s.last_ts_us = ws.txn.events > 0 ? ws.txn.last_ts_us : 0;
    s.evicted_total = ws.txn.evicted_total;
    s.evicted_full = ws.txn.evicted_full;
    s.commits = ws.commits;
    s.commit_failures = ws.commit_failures;
    s.full_events = ws.full_events;
    s.corrupt_recoveries = ws.corrupt_recoveries;
    s.failed_events = ws.failed_events;
    s.committed_events = ws.committed_events;
    s.committed_bytes = ws.committed_bytes;
    s.last_commit_us = ws.last_commit_wall_us;
    s.file_replacements = ws.file_replacements;
    s.gaps = ws.gaps;
    s.upstreams.resize(options_.upstreams.size());
    for (size_t i = 0; i < s.upstreams.size(); ++i) {
      s.upstreams[i].name = options_.upstreams[i];
      s.upstreams[i].evicted_unsent = ws.txn.evicted_unsent[i];
    }
  }

  // mu_ held. Held events count against the queue's capacity.
  bool QueueFull() const {
    if (queue_.empty() && held_ == 0) return false;
    return queue_.size() + held_ >= options_.queue_capacity ||
           queued_bytes_ + held_bytes_ >= options_.queue_max_bytes;
  }

  // Writer thread.
  void Run() {
    std::vector<Record> batch;
    batch.reserve(queue_.capacity());
    bool trim_pending = false;
    auto last_trim = SteadyClock::now();
    auto last_cursor_save = SteadyClock::now();
    auto retry_delay = std::chrono::duration_cast<SteadyClock::duration>(kRetryMin);
    auto retry_at = SteadyClock::now();
    const auto interval = std::chrono::microseconds(options_.commit_interval_us);
    for (;;) {
      heartbeat_.store(SteadyClock::now().time_since_epoch().count());
      bool stop = false;
      uint64_t through = 0;  // enqueued_ covered by this attempt
      {
        std::unique_lock<std::mutex> lk(mu_);
        for (;;) {
          if (stopping_) break;
          auto now = SteadyClock::now();
          if (!batch.empty()) {
            // Holding what failed: retry at retry_at (a Flush does not
            // hurry it; it returns the failure it already has).
            if (now >= retry_at) break;
            writer_cv_.wait_until(lk, std::min(retry_at, now + kCursorIdleSave));
            heartbeat_.store(SteadyClock::now().time_since_epoch().count());
            continue;
          }
          if (flush_target_ > attempted_) break;
          if (!queue_.empty() && now >= first_enqueue_ + interval) break;
          if (now >= last_cursor_save + kCursorIdleSave) break;
          auto deadline = queue_.empty() ? last_cursor_save + kCursorIdleSave
                                         : first_enqueue_ + interval;
          writer_cv_.wait_until(lk, deadline);
        }
        if (batch.empty()) {
          batch.swap(queue_);
        } else {
          std::move(queue_.begin(), queue_.end(), std::back_inserter(batch));
          queue_.clear();
        }
        queued_bytes_ = 0;
        // held_ keeps counting what a failed commit left (the queue's room
        // stays as it was); a normal commit leaves the queue its full room.
        through = enqueued_;
        stop = stopping_;
      }
      // The queue is empty again: producers waiting for room fill it while
      // this batch commits (waking them only after the commit would make
      // filling and committing take turns).
      space_cv_.notify_all();
      std::vector<uint64_t> acked = AckedSnapshot();
      Status s;
      bool committed = false;
      if (!batch.empty() || writer_->NeedsCommit(acked)) {
        s = writer_->Commit(&batch, acked);
        committed = true;
        last_cursor_save = SteadyClock::now();
      } else if (!stop) {
        last_cursor_save = SteadyClock::now();
      }
      bool switched = false;
      if (s.ok()) {
        if (batch.size() >= kTrimAfterBatch) trim_pending = true;
        batch.clear();
        switched = writer_->CheckFileIdentity();
        if (switched) generation_->fetch_add(1);
      }
      if (committed || switched) Publish();
      {
        std::lock_guard<std::mutex> lk(mu_);
        attempted_ = std::max(attempted_, through);
        if (committed) last_status_ = s;
        if (s.ok()) {
          if (failing_since_us_ != 0) {
            LogInfo("buffer", "commits succeed again after failing since " +
                                  FormatUtc(failing_since_us_, false) + " (" + failing_error_ + ")");
          }
          failing_since_us_ = 0;
          retry_delay = std::chrono::duration_cast<SteadyClock::duration>(kRetryMin);
        } else {
          if (failing_since_us_ == 0) failing_since_us_ = clock_.NowWallUs();
          failing_error_ = s.ToString();
          retry_at = SteadyClock::now() + retry_delay;
          retry_delay = std::min<SteadyClock::duration>(retry_delay * 2, kRetryMax);
        }
        held_ = batch.size();
        held_bytes_ = 0;
        for (const Record& r : batch) held_bytes_ += RecordBytes(r);
        last_seq_ = writer_->last_seq();
        if (stop && !batch.empty()) {
          // Stopping: one last attempt was made; what it could not commit
          // is lost.
          lost_at_stop_ += batch.size();
          LogError("buffer", "stopping with " + std::to_string(batch.size()) +
                                 " events that could not be committed: " + s.ToString());
          held_ = 0;
          held_bytes_ = 0;
          batch.clear();
        }
        if (stop && queue_.empty()) writer_done_ = true;
      }
      space_cv_.notify_all();
      done_cv_.notify_all();
      if (trim_pending && batch.empty() && SteadyClock::now() >= last_trim + kTrimEvery) {
        bool drained;
        {
          std::lock_guard<std::mutex> lk(mu_);
          drained = queue_.size() < kTrimAfterBatch;
          if (drained && queue_.capacity() > 4096) queue_.shrink_to_fit();
        }
        if (drained) {
          // The burst is over: give back the queue's peak and what the
          // allocator kept of it.
          std::vector<Record>().swap(batch);
          batch.reserve(4096);
#ifdef __GLIBC__
          malloc_trim(0);
#endif
          trim_pending = false;
          last_trim = SteadyClock::now();
        }
      }
      if (stop) {
        std::lock_guard<std::mutex> lk(mu_);
        if (queue_.empty() && batch.empty()) break;
      }
    }
    writer_exited_.store(true);
  }

  // Sync thread (durability normal): fsync the WAL every sync_interval, so
  // that every seq committed before the fsync started survives a power cut.
  void SyncLoop() {
    const std::string wal = DbPath(options_.data_dir) + "-wal";
    bool dir_synced = false;
    std::unique_lock<std::mutex> lk(sync_mu_);
    for (;;) {
      sync_cv_.wait_for(lk, std::chrono::microseconds(options_.sync_interval_us),
                        [&] { return sync_stop_; });
      if (sync_stop_) return;
      const uint64_t target = last_seq_.load();
      if (target == synced_seq_) continue;
      lk.unlock();
      // No WAL right now (just checkpointed and removed): nothing unsynced.
      Status s = FsyncPath(wal, /*missing_ok=*/true);
      if (s.ok() && !dir_synced) {
        s = FsyncDir(options_.data_dir);
        dir_synced = s.ok();
      }
      lk.lock();
      if (s.ok()) {
        synced_seq_ = target;
        last_sync_us_ = clock_.NowWallUs();
      } else {
        ++sync_failures_;
        sync_log_.Log("periodic fsync of the WAL failed: " + s.ToString());
      }
    }
  }

  const RingOptions options_;
  Clock& clock_;
  std::unique_ptr<Writer> writer_;  // writer thread only once started

  mutable std::mutex mu_;
  std::condition_variable writer_cv_;  // wakes the writer
  std::condition_variable space_cv_;   // room in the queue
  std::condition_variable done_cv_;    // a commit finished
  size_t queued_bytes_ = 0;            // RecordBytes of queue_; guarded by mu_
  size_t held_bytes_ = 0;              // RecordBytes of what failed commits hold; mu_
  std::vector<Record> queue_;          // guarded by mu_
  SteadyClock::time_point first_enqueue_;
  uint64_t enqueued_ = 0;              // Appends accepted (mu_)
  uint64_t attempted_ = 0;             // of those, through a commit attempt (mu_)
  uint64_t held_ = 0;                  // with the writer, not yet committed (mu_)
  uint64_t lost_at_stop_ = 0;          // held when the ring stopped (mu_)
  int64_t failing_since_us_ = 0;       // commits failing since (wall; mu_)
  std::string failing_error_;          // the last commit error (mu_)
  uint64_t flush_target_ = 0;          // (mu_)
  bool stopping_ = false;              // (mu_)
  bool writer_done_ = false;           // (mu_)
  Status last_status_;                 // (mu_)
  std::atomic<uint64_t> last_seq_{0};

  std::vector<std::atomic<uint64_t>> acked_;
  std::atomic<uint64_t> dropped_{0};
  // Writer loop passes (SteadyClock ticks) and its end, for writer_idle_us.
  std::atomic<SteadyClock::rep> heartbeat_{SteadyClock::now().time_since_epoch().count()};
  std::atomic<bool> writer_exited_{false};
  std::shared_ptr<std::atomic<uint64_t>> corrupt_rows_;
  // Bumped when the writer moved to a new buffer.db: readers reopen.
  std::shared_ptr<std::atomic<uint64_t>> generation_;

  mutable std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool sync_stop_ = false;       // (sync_mu_)
  uint64_t synced_seq_ = 0;      // (sync_mu_)
  int64_t last_sync_us_ = 0;     // (sync_mu_)
  uint64_t sync_failures_ = 0;   // (sync_mu_)
  RateLimitedLog sync_log_{LogLevel::kError, "buffer", 60000000, clock_};
  std::thread sync_thread_;

  mutable std::mutex stats_mu_;
  RingStats stats_;  // guarded by stats_mu_

  std::thread thread_;
  std::mutex stop_mu_;
  bool stopped_ = false;   // (stop_mu_)
  Status stop_status_;     // (stop_mu_)
};

}  // namespace

StatusOr<std::unique_ptr<Ring>> Ring::Open(const RingOptions& options,
                                           Clock& clock) {
  StatusOr<std::unique_ptr<Writer>> w = Writer::Open(options, clock);
  if (!w.ok()) return w.status();
  auto ring = std::make_unique<RingImpl>(options, std::move(w).value(), clock);
  ring->Start();
  return std::unique_ptr<Ring>(std::move(ring));
}

}  // namespace sluice
