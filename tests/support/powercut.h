// Power-cut simulation for tests: run a process under the LD_PRELOAD shim
// (tests/support/powercut_shim.cpp), SIGKILL it at any moment, then
// RestoreDurable() turns its data dir into what a power cut at that moment
// would have left: only what the process made durable (fsync/fdatasync of
// files, fsync of directories for creations, renames and unlinks).
//
// Typical round:
//   PowerCut cut(data_dir, shadow_dir);
//   process env += cut.Env();        // start the process under the shim
//   ... let it run; record what it reported committed (CommitTimeline) ...
//   kill(pid, SIGKILL); reap;
//   cut.Restore(options, &report);   // data dir := durable state
//   restart (under the shim again: the restored state is durable at start)
// The shim treats what exists at process start as durable, so a plain
// SIGKILL round without Restore() makes the page cache "flushed" for the
// next process; cut only after a process that ran under the shim.
// Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sluice {
namespace testing {

struct PowerCutOptions {
  // Torn-write variant: the most recent unsynced write (over the files that
  // survive) whose torn prefix is not empty is kept in part, up to the
  // last `sector` boundary at or before its middle; all other unsynced
  // writes are dropped.
  bool tear_last_write = false;
  uint64_t sector = 512;
};

struct PowerCutReport {
  std::vector<std::string> files;  // relative paths restored (dirs end in '/')
  std::string torn_file;           // empty: no write was torn
  uint64_t torn_offset = 0, torn_kept = 0, torn_len = 0;
  std::string Describe() const;
};

// The shim library: $SLUICE_POWERCUT_SHIM, else the path CMake built it at.
std::string PowerCutShimPath();

class PowerCut {
 public:
  PowerCut(std::string data_dir, std::string shadow_dir)
      : data_dir_(std::move(data_dir)), shadow_dir_(std::move(shadow_dir)) {}

  // "KEY=VALUE" entries that run a process under the shim for data_dir
  // (LD_PRELOAD and the shim's variables; under ASan also an ASAN_OPTIONS
  // that allows the preload).
  // With kill_at_write > 0 the process SIGKILLs itself right after its
  // Nth write to a file under data_dir (a cut between a write and its sync);
  // with kill_file, its Nth write to files of that base name.
  std::vector<std::string> Env(uint64_t kill_at_write = 0,
                               const std::string& kill_file = "") const;

  // After the process died: replaces the content of data_dir with its
  // durable state. False (with *error) if the shadow is missing or bad.
  bool Restore(const PowerCutOptions& options, PowerCutReport* report,
               std::string* error = nullptr) const;

  const std::string& data_dir() const { return data_dir_; }
  const std::string& shadow_dir() const { return shadow_dir_; }

 private:
  std::string data_dir_, shadow_dir_;
};

// Same as PowerCut(data_dir, shadow_dir).Restore(...).
bool RestoreDurable(const std::string& data_dir, const std::string& shadow_dir,
                    const PowerCutOptions& options, PowerCutReport* report,
                    std::string* error = nullptr);

// What a process reported committed, and when (monotonic µs): a test polls
// the process (e.g. `sluice status --json` buffer.last_seq) and Add()s each
// answer, then after a cut at time t asks what must have survived:
//   durability full:   SeqAt(t)                    (everything reported)
//   durability normal: SeqAt(t - sync_interval - slack)
// Values must not go down; Add() keeps the highest seen.
class CommitTimeline {
 public:
  void Add(int64_t mono_us, uint64_t seq);
  // The highest seq reported at or before mono_us (0 if none).
  uint64_t SeqAt(int64_t mono_us) const;
  uint64_t last() const { return points_.empty() ? 0 : points_.back().second; }
  int64_t last_time() const { return points_.empty() ? 0 : points_.back().first; }
  void Clear() { points_.clear(); }

 private:
  std::vector<std::pair<int64_t, uint64_t>> points_;
};

}  // namespace testing
}  // namespace sluice
