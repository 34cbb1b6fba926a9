// WorkerPool on its own: FIFO jobs on base threads, growth past hung jobs up
// to the cap, surplus threads exiting, Stop() dropping queued jobs and
// joining, restart after Stop(). Jobs block on a condition the test
// releases (real blocking, bounded so a broken pool fails instead of hangs).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "drivers/worker_pool.h"
#include "tests/support/support.h"

using namespace sluice;
using sluice::testing::WaitUntil;

namespace {

constexpr int64_t kWait = 10000000;

// A gate jobs wait at until Open(); at most 30 s.
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return open_; });
    --waiting_;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  int waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

WorkerPool::Options Opts(size_t base, size_t max) {
  WorkerPool::Options o;
  o.base = base;
  o.max = max;
  return o;
}

}  // namespace

TEST_CASE("jobs run on base threads; hung jobs make the pool grow up to its cap") {
  Gate gate;
  std::mutex mu;
  std::vector<int> done;
  WorkerPool pool(Opts(2, 4));
  CHECK(pool.stats().threads == 0);  // lazy
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(pool.Submit("job" + std::to_string(i), [&, i] {
      gate.Wait();
      std::lock_guard<std::mutex> lock(mu);
      done.push_back(i);
    }));
  }
  REQUIRE(WaitUntil([&] { return gate.waiting() == 2; }, kWait, 1000));
  WorkerPoolStats s = pool.stats();
  CHECK(s.threads == 2);
  CHECK(s.busy == 2);
  CHECK(s.queued == 3);
  pool.MarkHung(ids[0]);
  pool.MarkHung(ids[0]);  // once only
  pool.MarkHung(ids[4]);  // queued, not running: no-op
  pool.MarkHung(9999);    // unknown: no-op
  REQUIRE(WaitUntil([&] { return gate.waiting() == 3; }, kWait, 1000));
  s = pool.stats();
  CHECK(s.threads == 3);
  CHECK(s.hung == 1);
  CHECK(s.grown == 1);
  pool.MarkHung(ids[1]);
  pool.MarkHung(ids[2]);  // the cap (4) stops growth here
  REQUIRE(WaitUntil([&] { return gate.waiting() == 4; }, kWait, 1000));
  s = pool.stats();
  CHECK(s.threads == 4);
  CHECK(s.peak_threads == 4);
  CHECK(s.hung == 3);
  CHECK(s.queued == 1);
  gate.Open();
  REQUIRE(WaitUntil([&] { return pool.stats().jobs == 5; }, kWait, 1000));
  // Surplus threads exit once nothing is hung.
  REQUIRE(WaitUntil([&] { return pool.stats().threads == 2; }, kWait, 1000));
  CHECK(pool.stats().hung == 0);
  std::lock_guard<std::mutex> lock(mu);
  CHECK(done.size() == 5);
}

TEST_CASE("Stop() drops queued jobs, joins after running ones, and the pool restarts") {
  Gate gate;
  std::atomic<int> ran{0};
  WorkerPool pool(Opts(1, 1));
  pool.Submit("blocked", [&] {
    gate.Wait();
    ++ran;
  });
  pool.Submit("queued", [&] { ++ran; });
  REQUIRE(WaitUntil([&] { return gate.waiting() == 1; }, kWait, 1000));
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    pool.Stop();
    stopped = true;
  });
  REQUIRE(WaitUntil([&] { return pool.stats().queued == 0; }, kWait, 1000));
  CHECK(pool.Submit("late", [&] { ++ran; }) == 0);  // refused while stopping
  CHECK_FALSE(stopped);
  gate.Open();
  REQUIRE(WaitUntil([&] { return stopped.load(); }, kWait, 1000));
  stopper.join();
  CHECK(ran == 1);  // the queued job never ran
  CHECK(pool.stats().threads == 0);
  CHECK(pool.Submit("again", [&] { ++ran; }) != 0);
  REQUIRE(WaitUntil([&] { return ran.load() == 2; }, kWait, 1000));
  pool.Stop();
  pool.Stop();
}

TEST_CASE("StopWithin() gives up on a job blocked past its limit, and a later Stop() joins it") {
  Gate gate;
  WorkerPool pool(Opts(2, 4));
  std::atomic<int> done{0};
  REQUIRE(pool.Submit("stuck", [&] {
    gate.Wait();
    ++done;
  }) != 0);
  REQUIRE(WaitUntil([&] { return gate.waiting() == 1; }, kWait, 1000));
  // Blocked: StopWithin returns false after about its limit, the job still runs.
  CHECK_FALSE(pool.StopWithin(50000));
  CHECK(done.load() == 0);
  CHECK(pool.stats().threads == 1);
  // The pool stays stopped: new jobs are refused.
  CHECK(pool.Submit("late", [] {}) == 0);
  // Released, the thread finishes its job and exits; Stop() joins it.
  gate.Open();
  REQUIRE(WaitUntil([&] { return done.load() == 1; }, kWait, 1000));
  CHECK(pool.StopWithin(kWait));
  CHECK(pool.stats().threads == 0);
  // Nothing blocked: StopWithin(0) succeeds at once.
  REQUIRE(pool.Submit("quick", [&] { ++done; }) != 0);
  REQUIRE(WaitUntil([&] { return done.load() == 2; }, kWait, 1000));
  CHECK(pool.StopWithin(kWait));
}
