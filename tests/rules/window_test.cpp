#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "rules/window.h"

using namespace sluice::rules;

namespace {

constexpr int64_t kSec = 1000000;
const double kNone = std::numeric_limits<double>::quiet_NaN();
const Func kAll[] = {Func::kAvg,  Func::kMin,  Func::kMax,  Func::kSum,   Func::kCount,
                     Func::kLast, Func::kDelta, Func::kRate, Func::kStddev};

struct R {
  double secs;
  double value;
};

// Expected values in kAll order: avg min max sum count last delta rate stddev.
struct Case {
  const char* name;
  WindowSpec spec;
  std::vector<R> readings;
  double expect[9];
};

bool Same(double got, double want) {
  if (std::isnan(want)) return std::isnan(got);
  return std::fabs(got - want) <= 1e-9 * std::max(1.0, std::fabs(want));
}

const WindowSpec k30s{WindowKind::kSliding, 30 * kSec};
const WindowSpec kLast3{WindowKind::kCount, 3};
const WindowSpec kLast2{WindowKind::kCount, 2};
const WindowSpec kTumble1m{WindowKind::kTumbling, 60 * kSec};

}  // namespace

TEST_CASE("every function on every window type (boundaries, empty, out of order)") {
  const double n = kNone;
  const Case cases[] = {
      // --- sliding: (head - 30s, head] ---
      {"sliding empty", k30s, {}, {n, n, n, 0, 0, n, n, n, n}},
      {"sliding: a reading exactly 30s old is out",
       k30s, {{0, 10}, {10, 20}, {30, 30}}, {25, 20, 30, 50, 2, 30, 10, 0.5, 5}},
      {"sliding: a reading 29.999999s old is in",
       k30s, {{0.000001, 10}, {10, 20}, {30, 30}}, {20, 10, 30, 60, 3, 30, 20, 20 / 29.999999, std::sqrt(200.0 / 3)}},
      {"sliding: one reading", k30s, {{5, 7}}, {7, 7, 7, 7, 1, 7, 0, n, 0}},
      {"sliding: equal timestamps have no rate", k30s, {{5, 1}, {5, 3}}, {2, 1, 3, 4, 2, 3, 2, n, 1}},
      {"sliding: out of order is placed by timestamp",
       k30s, {{0, 1}, {20, 3}, {10, 2}}, {2, 1, 3, 6, 3, 3, 2, 0.1, std::sqrt(2.0 / 3)}},
      {"sliding: an out-of-order reading already outside is left out",
       k30s, {{40, 5}, {10, 9}}, {5, 5, 5, 5, 1, 5, 0, n, 0}},
      {"sliding: old readings leave as time moves",
       k30s, {{0, 100}, {1, 1}, {31, 3}}, {3, 3, 3, 3, 1, 3, 0, n, 0}},
      {"sliding: negative values and rate",
       k30s, {{0, -4}, {2, -8}}, {-6, -8, -4, -12, 2, -8, -4, -2, 2}},
      // --- count: the N newest by timestamp ---
      {"count empty", kLast3, {}, {n, n, n, 0, 0, n, n, n, n}},
      {"count: keeps the last 3",
       kLast3, {{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}}, {4, 3, 5, 12, 3, 5, 2, 1, std::sqrt(2.0 / 3)}},
      {"count: fewer than N", kLast3, {{1, 1}, {2, 2}}, {1.5, 1, 2, 3, 2, 2, 1, 1, 0.5}},
      {"count: out of order keeps the newest timestamps",
       kLast3, {{1, 1}, {2, 2}, {4, 4}, {3, 3}}, {3, 2, 4, 9, 3, 4, 2, 1, std::sqrt(2.0 / 3)}},
      {"count: older than a full window is left out",
       kLast2, {{5, 5}, {6, 6}, {1, 100}}, {5.5, 5, 6, 11, 2, 6, 1, 1, 0.5}},
      // --- tumbling: the last completed [k*W, (k+1)*W) bucket ---
      {"tumbling empty", kTumble1m, {}, {n, n, n, 0, 0, n, n, n, n}},
      {"tumbling: only the current bucket -> nothing completed",
       kTumble1m, {{0, 1}, {30, 2}}, {n, n, n, 0, 0, n, n, n, n}},
      {"tumbling: 60s starts the next bucket; 59.999s is in the previous",
       kTumble1m, {{0, 1}, {30, 3}, {59.999, 5}, {60, 7}},
       {3, 1, 5, 9, 3, 5, 4, 4 / 59.999, std::sqrt(8.0 / 3)}},
      {"tumbling: a skipped bucket is empty",
       kTumble1m, {{0, 1}, {10, 2}, {130, 3}}, {n, n, n, 0, 0, n, n, n, n}},
      {"tumbling: a late reading still counts for the completed bucket",
       kTumble1m, {{10, 1}, {70, 2}, {50, 3}}, {2, 1, 3, 4, 2, 3, 2, 2.0 / 40, 1}},
      {"tumbling: readings for older buckets are left out",
       kTumble1m, {{10, 1}, {70, 2}, {130, 5}, {20, 100}}, {2, 2, 2, 2, 1, 2, 0, n, 0}},
      {"tumbling: the current bucket does not leak into the completed one",
       kTumble1m, {{60, 1}, {61, 2}, {120, 100}, {150, 200}}, {1.5, 1, 2, 3, 2, 2, 1, 1, 0.5}},
  };
  const int64_t base = 1764075600000000;  // a multiple of 60 s
  for (const Case& c : cases) {
    auto w = MakeWindow(c.spec, 1000000);
    for (Func f : kAll) w->Track(f);
    for (const R& r : c.readings) w->Add(base + static_cast<int64_t>(std::llround(r.secs * kSec)), r.value);
    for (size_t i = 0; i < 9; ++i) {
      INFO(c.name << " / " << c.spec.ToString() << " / " << FuncName(kAll[i]));
      double got = w->Value(kAll[i]);
      INFO("got " << got << " want " << c.expect[i]);
      CHECK(Same(got, c.expect[i]));
    }
  }
}

TEST_CASE("tumbling buckets are aligned to multiples of W since the epoch") {
  auto w = MakeWindow(WindowSpec{WindowKind::kTumbling, 3600 * kSec}, 0);
  const int64_t hour = 3600 * kSec;
  const int64_t h = 490000 * hour;  // some whole hour
  w->Add(h - 1, 50);                 // last microsecond of the previous hour
  w->Add(h + 10 * kSec, 1);
  w->Add(h + hour - 1, 2);
  w->Add(h + hour, 3);               // opens the next bucket: [h, h+1h) completes
  CHECK(w->Value(Func::kCount) == 2);
  CHECK(w->Value(Func::kMax) == 2);
}

TEST_CASE("min/max deques and aggregates match brute force under out-of-order input") {
  std::mt19937_64 rng(7);
  for (WindowSpec spec : {WindowSpec{WindowKind::kSliding, 5 * kSec},
                          WindowSpec{WindowKind::kSliding, 1},
                          WindowSpec{WindowKind::kCount, 1},
                          WindowSpec{WindowKind::kCount, 17}}) {
    auto w = MakeWindow(spec, 1000000);
    for (Func f : kAll) w->Track(f);
    struct E { int64_t ts; uint64_t seq; double v; };
    std::vector<E> all;
    int64_t head = 0;
    for (uint64_t i = 0; i < 20000; ++i) {
      // Mostly in order, 20% up to 3 s late, many equal timestamps and values.
      int64_t ts = head + static_cast<int64_t>(rng() % 3) * 100000;
      if (rng() % 5 == 0) ts = std::max<int64_t>(0, head - static_cast<int64_t>(rng() % (3 * kSec)));
      double v = static_cast<double>(static_cast<int>(rng() % 21) - 10);
      w->Add(ts, v);
      head = std::max(head, ts);
      all.push_back({ts, i, v});
      // Brute force.
      std::vector<E> in;
      if (spec.kind == WindowKind::kSliding) {
        // A reading already outside when it arrived never enters.
        for (const E& e : all) if (e.ts > head - spec.length) in.push_back(e);
      } else {
        in = all;
        std::sort(in.begin(), in.end(), [](const E& a, const E& b) {
          return a.ts != b.ts ? a.ts < b.ts : a.seq < b.seq;
        });
        if (in.size() > static_cast<size_t>(spec.length)) in.erase(in.begin(), in.end() - spec.length);
      }
      if (spec.kind == WindowKind::kSliding) {
        std::stable_sort(in.begin(), in.end(), [](const E& a, const E& b) { return a.ts < b.ts; });
      }
      double sum = 0, mn = 1e9, mx = -1e9;
      for (const E& e : in) { sum += e.v; mn = std::min(mn, e.v); mx = std::max(mx, e.v); }
      INFO(spec.ToString() << " step " << i);
      REQUIRE(w->Value(Func::kCount) == static_cast<double>(in.size()));
      REQUIRE(Same(w->Value(Func::kSum), sum));
      REQUIRE(Same(w->Value(Func::kMin), in.empty() ? kNone : mn));
      REQUIRE(Same(w->Value(Func::kMax), in.empty() ? kNone : mx));
      REQUIRE(Same(w->Value(Func::kLast), in.empty() ? kNone : in.back().v));
      REQUIRE(Same(w->Value(Func::kDelta), in.empty() ? kNone : in.back().v - in.front().v));
      if (all.size() > 200) all.erase(all.begin(), all.begin() + 100);
    }
  }
}

TEST_CASE("running variance stays accurate with large offsets and long runs") {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> noise(-0.01, 0.01);
  auto count = MakeWindow(WindowSpec{WindowKind::kCount, 1000}, 1000000);
  auto sliding = MakeWindow(WindowSpec{WindowKind::kSliding, 10 * kSec}, 1000000);
  count->Track(Func::kStddev);
  sliding->Track(Func::kStddev);
  std::vector<double> recent;
  auto exact_sd = [&](size_t n) {
    double mean = 0;
    for (size_t i = recent.size() - n; i < recent.size(); ++i) mean += recent[i];
    mean /= static_cast<double>(n);
    double m2 = 0;
    for (size_t i = recent.size() - n; i < recent.size(); ++i) m2 += (recent[i] - mean) * (recent[i] - mean);
    return std::sqrt(m2 / static_cast<double>(n));
  };
  int64_t ts = 0;
  for (int i = 0; i < 300000; ++i) {
    double v = (i < 200000 ? 1e9 : 0.0) + noise(rng);  // then a drop to ~0
    recent.push_back(v);
    count->Add(ts, v);
    sliding->Add(ts, v);
    ts += 10000;  // 100 Hz: the 10 s window holds 1000 readings
    if (i % 49999 == 0 && i > 1000) {
      double want = exact_sd(1000);
      INFO("i=" << i << " want " << want);
      CHECK(std::fabs(count->Value(Func::kStddev) - want) < 1e-6);
      CHECK(std::fabs(sliding->Value(Func::kStddev) - want) < 1e-6);
    }
  }
  double want = exact_sd(1000);
  CHECK(std::fabs(count->Value(Func::kStddev) - want) < 1e-9);
  CHECK(std::fabs(sliding->Value(Func::kStddev) - want) < 1e-9);
  double mean = 0;
  for (size_t i = recent.size() - 1000; i < recent.size(); ++i) mean += recent[i];
  mean /= 1000;
  CHECK(std::fabs(count->Value(Func::kAvg) - mean) < 1e-9);
}

TEST_CASE("a window past its size cap drops the oldest readings and counts them") {
  auto w = MakeWindow(WindowSpec{WindowKind::kSliding, 1000 * kSec}, 10);
  for (int i = 0; i < 25; ++i) w->Add(i * kSec, i);
  CHECK(w->Value(Func::kCount) == 10);
  CHECK(w->overflowed() == 15);
  CHECK(w->Value(Func::kSum) == 15 + 16 + 17 + 18 + 19 + 20 + 21 + 22 + 23 + 24);
}

TEST_CASE("Track() later rebuilds from stored readings") {
  auto w = MakeWindow(k30s, 1000);
  w->Add(1 * kSec, 5);
  w->Add(2 * kSec, 9);
  w->Add(3 * kSec, 1);
  w->Track(Func::kMin);
  w->Track(Func::kStddev);
  CHECK(w->Value(Func::kMin) == 1);
  CHECK(w->Value(Func::kMax) == 9);
  CHECK(std::fabs(w->Value(Func::kStddev) - std::sqrt(32.0 / 3)) < 1e-12);
}
