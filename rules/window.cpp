#include "rules/window.h"

#include <cmath>
#include <limits>

namespace sluice {
namespace rules {
namespace {

constexpr double kNoValue = std::numeric_limits<double>::quiet_NaN();

struct Entry {
  int64_t ts = 0;
  uint64_t seq = 0;  // arrival order within the window: breaks timestamp ties
  double value = 0;
};

bool KeyLess(const Entry& a, const Entry& b) {
  return a.ts != b.ts ? a.ts < b.ts : a.seq < b.seq;
}

// A monotonic deque over a time-ordered sequence: holds exactly the entries
// no later entry dominates (max: a later value >= it; min: <= it), so the
// front is the extreme. Entries may arrive out of order.
class Extreme {
 public:
  explicit Extreme(bool is_max) : is_max_(is_max) {}

  void Clear() { q_.clear(); }

  void Insert(const Entry& e) {
    size_t p = q_.size();
    while (p > 0 && KeyLess(e, q_[p - 1])) --p;
    if (p < q_.size() && Dominates(q_[p].value, e.value)) return;
    size_t first = p;
    while (first > 0 && Dominates(e.value, q_[first - 1].value)) --first;
    q_.replace(first, p, e);
  }

  // Drops the entries up to and including `gone` (the oldest reading left).
  void Evict(const Entry& gone) {
    while (!q_.empty() && !KeyLess(gone, q_.front())) q_.pop_front();
  }

  double Front() const { return q_.empty() ? kNoValue : q_.front().value; }

 private:
  bool Dominates(double later, double earlier) const {
    return is_max_ ? later >= earlier : later <= earlier;
  }

  bool is_max_;
  Ring<Entry> q_;
};

// Sliding (time) and count windows: the readings themselves in timestamp
// order, a running sum, a Welford mean/M2 and optional min/max deques.
class SeriesWindow final : public Window {
 public:
  SeriesWindow(const WindowSpec& spec, size_t max_entries)
      : Window(spec), max_entries_(max_entries == 0 ? 1 : max_entries),
        min_(false), max_(true) {}

  void Add(int64_t ts, double value) override {
    const bool timed = spec().kind == WindowKind::kSliding;
    if (timed) {
      int64_t head = ts > head_ ? ts : head_;
      if (ts <= head - spec().length) return;  // already outside
      head_ = head;
    }
    Entry e{ts, next_seq_++, value};
    size_t p = buf_.size();
    while (p > 0 && KeyLess(e, buf_[p - 1])) --p;
    if (p == 0 && !buf_.empty() && !timed &&
        buf_.size() >= static_cast<size_t>(spec().length)) {
      return;  // older than all of a full count window
    }
    if (p == buf_.size()) buf_.push_back(e);
    else buf_.insert(p, e);
    sum_ += value;
    if (var_) {
      double d = value - mean_;
      mean_ += d / static_cast<double>(buf_.size());
      m2_ += d * (value - mean_);
    }
    if (minmax_) {
      min_.Insert(e);
      max_.Insert(e);
    }
    if (timed) {
      const int64_t cutoff = head_ - spec().length;
      while (!buf_.empty() && buf_.front().ts <= cutoff) RemoveFront();
    } else {
      while (buf_.size() > static_cast<size_t>(spec().length)) RemoveFront();
    }
    while (buf_.size() > max_entries_) {
      RemoveFront();
      ++overflowed_;
    }
    if (removals_ > buf_.size() + 64) Recompute();
  }

  double Value(Func f) const override {
    const size_t n = buf_.size();
    switch (f) {
      case Func::kCount: return static_cast<double>(n);
      case Func::kSum: return n ? sum_ : 0.0;
      case Func::kAvg: return n ? sum_ / static_cast<double>(n) : kNoValue;
      case Func::kMin: return n ? min_.Front() : kNoValue;
      case Func::kMax: return n ? max_.Front() : kNoValue;
      case Func::kLast: return n ? buf_.back().value : kNoValue;
      case Func::kDelta: return n ? buf_.back().value - buf_.front().value : kNoValue;
      case Func::kRate: {
        if (n < 2 || buf_.back().ts <= buf_.front().ts) return kNoValue;
        return (buf_.back().value - buf_.front().value) * 1e6 /
               static_cast<double>(buf_.back().ts - buf_.front().ts);
      }
      case Func::kStddev:
        return n ? std::sqrt((m2_ > 0 ? m2_ : 0.0) / static_cast<double>(n)) : kNoValue;
      case Func::kAbsent: break;
    }
    return kNoValue;
  }

  void Track(Func f) override {
    if (f == Func::kStddev && !var_) {
      var_ = true;
      Recompute();
    }
    if ((f != Func::kMin && f != Func::kMax) || minmax_) return;
    minmax_ = true;
    min_.Clear();
    max_.Clear();
    for (size_t i = 0; i < buf_.size(); ++i) {
      min_.Insert(buf_[i]);
      max_.Insert(buf_[i]);
    }
  }

  uint64_t overflowed() const override { return overflowed_; }

 private:
  void RemoveFront() {
    const Entry e = buf_.front();
    buf_.pop_front();
    ++removals_;
    if (minmax_) {
      min_.Evict(e);
      max_.Evict(e);
    }
    if (buf_.empty()) {
      sum_ = mean_ = m2_ = 0;
      removals_ = 0;
      return;
    }
    sum_ -= e.value;
    if (!var_) return;
    double d = e.value - mean_;
    mean_ -= d / static_cast<double>(buf_.size());
    m2_ -= d * (e.value - mean_);
    if (m2_ < 0) m2_ = 0;
  }

  // Exact two-pass recomputation from the stored readings.
  void Recompute() {
    removals_ = 0;
    double sum = 0;
    for (size_t i = 0; i < buf_.size(); ++i) sum += buf_[i].value;
    const double mean = buf_.empty() ? 0 : sum / static_cast<double>(buf_.size());
    double m2 = 0;
    for (size_t i = 0; var_ && i < buf_.size(); ++i) {
      double d = buf_[i].value - mean;
      m2 += d * d;
    }
    sum_ = sum;
    mean_ = mean;
    m2_ = m2;
  }

  const size_t max_entries_;
  Ring<Entry> buf_;
  int64_t head_ = std::numeric_limits<int64_t>::min();
  uint64_t next_seq_ = 0;
  double sum_ = 0, mean_ = 0, m2_ = 0;
  size_t removals_ = 0;
  bool minmax_ = false;  // min_/max_ maintained
  bool var_ = false;     // mean_/m2_ maintained
  Extreme min_, max_;
  uint64_t overflowed_ = 0;
};

// One bucket's aggregates; no removal, so plain running values suffice.
struct Bucket {
  int64_t index = 0;  // bucket k covers [k*W, (k+1)*W)
  size_t n = 0;
  double sum = 0, mean = 0, m2 = 0, min = 0, max = 0;
  int64_t first_ts = 0, last_ts = 0;
  double first = 0, last = 0;

  void Reset(int64_t k) { *this = Bucket(); index = k; }

  void Add(int64_t ts, double v) {
    if (n == 0) {
      min = max = first = last = v;
      first_ts = last_ts = ts;
    } else {
      if (v < min) min = v;
      if (v > max) max = v;
      if (ts < first_ts) { first_ts = ts; first = v; }
      if (ts >= last_ts) { last_ts = ts; last = v; }
    }
    ++n;
    sum += v;
    double d = v - mean;
    mean += d / static_cast<double>(n);
    m2 += d * (v - mean);
  }
};

class TumblingWindow final : public Window {
 public:
  explicit TumblingWindow(const WindowSpec& spec) : Window(spec) {}

  void Add(int64_t ts, double value) override {
    const int64_t k = FloorDiv(ts, spec().length);
    if (!started_) {
      started_ = true;
      cur_.Reset(k);
      prev_.Reset(k - 1);
    } else if (k > cur_.index) {
      if (k == cur_.index + 1) prev_ = cur_;
      else prev_.Reset(k - 1);
      cur_.Reset(k);
    }
    if (k == cur_.index) cur_.Add(ts, value);
    else if (k == prev_.index) prev_.Add(ts, value);
    // Older buckets are closed: left out.
  }

  double Value(Func f) const override {
    const Bucket& b = prev_;
    const size_t n = started_ ? b.n : 0;
    switch (f) {
      case Func::kCount: return static_cast<double>(n);
      case Func::kSum: return n ? b.sum : 0.0;
      case Func::kAvg: return n ? b.sum / static_cast<double>(n) : kNoValue;
      case Func::kMin: return n ? b.min : kNoValue;
      case Func::kMax: return n ? b.max : kNoValue;
      case Func::kLast: return n ? b.last : kNoValue;
      case Func::kDelta: return n ? b.last - b.first : kNoValue;
      case Func::kRate:
        if (n < 2 || b.last_ts <= b.first_ts) return kNoValue;
        return (b.last - b.first) * 1e6 / static_cast<double>(b.last_ts - b.first_ts);
      case Func::kStddev:
        return n ? std::sqrt((b.m2 > 0 ? b.m2 : 0.0) / static_cast<double>(n)) : kNoValue;
      case Func::kAbsent: break;
    }
    return kNoValue;
  }

 private:
  bool started_ = false;
  Bucket cur_, prev_;
};

}  // namespace

std::unique_ptr<Window> MakeWindow(const WindowSpec& spec, size_t max_entries) {
  if (spec.kind == WindowKind::kTumbling) return std::make_unique<TumblingWindow>(spec);
  return std::make_unique<SeriesWindow>(spec, max_entries);
}

}  // namespace rules
}  // namespace sluice
