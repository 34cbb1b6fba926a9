// Ring: the producer queue, the writer thread and its group commits.
//
// Append() pushes onto a bounded queue under mu_. The writer thread wakes
// when the queue becomes non-empty, waits until commit_interval has passed
// since the oldest queued event arrived (or a Flush()/Stop() asks), then
// swaps the whole queue out and commits it in one transaction. Changed
// upstream cursors ride along with every commit; with no events they are
// written at most every kCursorIdleSaveUs.
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "buffer/codec.h"
#include "buffer/reader.h"
#include "buffer/store.h"
#include "buffer/writer.h"
#include "common/log.h"

namespace sluice {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kCursorIdleSave = std::chrono::seconds(1);

class RingImpl final : public Ring {
 public:
  RingImpl(const RingOptions& options, std::unique_ptr<Writer> writer)
      : options_(options),
        writer_(std::move(writer)),
        acked_(options.upstreams.size()),
        corrupt_rows_(std::make_shared<std::atomic<uint64_t>>(0)) {
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

  void Start() { thread_ = std::thread([this] { Run(); }); }

  Status Append(Record record, int64_t timeout_us) override {
    if (!VerifyEncodedEvent(record.body.data(), record.body.size())) {
      return InvalidArgument("buffer: record body is not an encoded Event");
    }
    std::unique_lock<std::mutex> lk(mu_);
    if (stopping_) return Unavailable("buffer: ring is stopping");
    if (queue_.size() >= options_.queue_capacity) {
      if (timeout_us > 0) {
        space_cv_.wait_for(lk, std::chrono::microseconds(timeout_us), [&] {
          return stopping_ || queue_.size() < options_.queue_capacity;
        });
      }
      if (stopping_) return Unavailable("buffer: ring is stopping");
      if (queue_.size() >= options_.queue_capacity) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return Unavailable("buffer: queue full");
      }
    }
    if (queue_.empty()) {
      first_enqueue_ = SteadyClock::now();
      writer_cv_.notify_one();
    }
    queue_.push_back(std::move(record));
    ++enqueued_;
    return Status::Ok();
  }

  Status Flush() override {
    std::unique_lock<std::mutex> lk(mu_);
    uint64_t target = enqueued_;
    if (processed_ >= target) return last_status_;
    if (flush_target_ < target) flush_target_ = target;
    writer_cv_.notify_one();
    done_cv_.wait(lk, [&] { return processed_ >= target || writer_done_; });
    if (processed_ < target) return Unavailable("buffer: ring stopped");
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
    auto r = std::make_unique<ReaderImpl>(corrupt_rows_);
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
    struct stat st;
    if (::stat(DbPath(options_.data_dir).c_str(), &st) == 0) {
      s.file_bytes = static_cast<uint64_t>(st.st_size);
    }
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
    s.upstreams.resize(options_.upstreams.size());
    for (size_t i = 0; i < s.upstreams.size(); ++i) {
      s.upstreams[i].name = options_.upstreams[i];
      s.upstreams[i].evicted_unsent = ws.txn.evicted_unsent[i];
    }
  }

  // Writer thread.
  void Run() {
    std::vector<Record> batch;
    batch.reserve(queue_.capacity());
    auto last_cursor_save = SteadyClock::now();
    const auto interval = std::chrono::microseconds(options_.commit_interval_us);
    for (;;) {
      heartbeat_.store(SteadyClock::now().time_since_epoch().count());
      bool stop = false;
      {
        std::unique_lock<std::mutex> lk(mu_);
        for (;;) {
          if (stopping_ || flush_target_ > processed_) break;
          auto now = SteadyClock::now();
          if (!queue_.empty() && now >= first_enqueue_ + interval) break;
          if (now >= last_cursor_save + kCursorIdleSave) break;
          auto deadline = queue_.empty() ? last_cursor_save + kCursorIdleSave
                                         : first_enqueue_ + interval;
          writer_cv_.wait_until(lk, deadline);
        }
        batch.swap(queue_);
        stop = stopping_;
      }
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
      if (committed) Publish();
      {
        std::lock_guard<std::mutex> lk(mu_);
        processed_ += batch.size();
        if (committed) last_status_ = s;
        last_seq_ = writer_->last_seq();
        if (stop && queue_.empty()) writer_done_ = true;
      }
      done_cv_.notify_all();
      batch.clear();
      if (stop) {
        std::lock_guard<std::mutex> lk(mu_);
        if (queue_.empty()) break;
      }
    }
    writer_exited_.store(true);
  }

  const RingOptions options_;
  std::unique_ptr<Writer> writer_;  // writer thread only once started

  mutable std::mutex mu_;
  std::condition_variable writer_cv_;  // wakes the writer
  std::condition_variable space_cv_;   // room in the queue
  std::condition_variable done_cv_;    // a commit finished
  std::vector<Record> queue_;          // guarded by mu_
  SteadyClock::time_point first_enqueue_;
  uint64_t enqueued_ = 0;              // Appends accepted (mu_)
  uint64_t processed_ = 0;             // of those, committed or failed (mu_)
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
  auto ring = std::make_unique<RingImpl>(options, std::move(w).value());
  ring->Start();
  return std::unique_ptr<Ring>(std::move(ring));
}

}  // namespace sluice
