#include "tests/support/powercut.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>

#include "tests/support/support.h"

namespace sluice {
namespace testing {

namespace {

struct Entry {
  uint64_t id;
  bool is_dir;
  std::string name;
};

struct Manifest {
  uint64_t root = 0;
  std::map<uint64_t, std::vector<Entry>> dirs;
};

bool ParseManifest(const std::string& text, Manifest* m, std::string* error) {
  std::istringstream in(text);
  std::string line;
  std::vector<Entry>* current = nullptr;
  bool have_root = false;
  while (std::getline(in, line)) {
    if (line.rfind("root ", 0) == 0) {
      m->root = std::strtoull(line.c_str() + 5, nullptr, 10);
      have_root = true;
    } else if (line.rfind("dir ", 0) == 0) {
      current = &m->dirs[std::strtoull(line.c_str() + 4, nullptr, 10)];
    } else {
      // "ID f|d NAME"
      size_t a = line.find(' ');
      if (!current || a == std::string::npos || line.size() < a + 4 || line[a + 2] != ' ') {
        *error = "bad MANIFEST line: " + line;
        return false;
      }
      current->push_back({std::strtoull(line.c_str(), nullptr, 10), line[a + 1] == 'd',
                          line.substr(a + 3)});
    }
  }
  if (!have_root) *error = "MANIFEST has no root";
  return have_root;
}

struct LastWrite {
  uint64_t counter = 0, offset = 0, len = 0;
  std::string data;
};

// files/ID.lw: the file's last write since its last sync, if any.
bool ReadLastWrite(const std::string& path, LastWrite* lw) {
  std::string raw = ReadFile(path);
  if (raw.size() < 3 * sizeof(uint64_t)) return false;
  uint64_t h[3];
  std::memcpy(h, raw.data(), sizeof h);
  if (h[2] == 0 || raw.size() < sizeof h + h[2]) return false;
  lw->counter = h[0];
  lw->offset = h[1];
  lw->len = h[2];
  lw->data = raw.substr(sizeof h, h[2]);
  return true;
}

bool CopyFile(const std::string& from, const std::string& to, std::string* error) {
  struct stat st;
  std::string data = ::stat(from.c_str(), &st) == 0 ? ReadFile(from) : "";
  if (!WriteFile(to, data)) {
    *error = "cannot write " + to;
    return false;
  }
  return true;
}

bool PwriteAt(const std::string& path, uint64_t offset, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)) ==
            static_cast<ssize_t>(data.size());
  return ::close(fd) == 0 && ok;
}

}  // namespace

std::string PowerCutReport::Describe() const {
  std::string out = std::to_string(files.size()) + " durable entries";
  if (!torn_file.empty()) {
    out += ", torn " + torn_file + " at " + std::to_string(torn_offset) + ": kept " +
           std::to_string(torn_kept) + " of " + std::to_string(torn_len) + " bytes";
  }
  return out;
}

std::string PowerCutShimPath() {
  if (const char* p = std::getenv("SLUICE_POWERCUT_SHIM")) return p;
#ifdef SLUICE_POWERCUT_SHIM_PATH
  return SLUICE_POWERCUT_SHIM_PATH;
#else
  return "";
#endif
}

std::vector<std::string> PowerCut::Env(uint64_t kill_at_write, const std::string& kill_file) const {
  std::vector<std::string> env = {"LD_PRELOAD=" + PowerCutShimPath(),
                                  "SLUICE_POWERCUT_DIR=" + data_dir_,
                                  "SLUICE_POWERCUT_SHADOW=" + shadow_dir_};
  if (kill_at_write > 0) {
    env.push_back("SLUICE_POWERCUT_KILL_AT_WRITE=" + std::to_string(kill_at_write));
    if (!kill_file.empty()) env.push_back("SLUICE_POWERCUT_KILL_FILE=" + kill_file);
  }
  // Sanitizer builds: the runtime wants to come first in the library list.
  const char* asan = std::getenv("ASAN_OPTIONS");
  env.push_back(std::string("ASAN_OPTIONS=") + (asan ? std::string(asan) + ":" : "") +
                "verify_asan_link_order=0");
  return env;
}

bool PowerCut::Restore(const PowerCutOptions& options, PowerCutReport* report,
                       std::string* error) const {
  std::string err;
  if (!error) error = &err;
  *report = PowerCutReport();
  Manifest m;
  std::string text = ReadFile(shadow_dir_ + "/MANIFEST");
  if (text.empty()) {
    *error = "no " + shadow_dir_ + "/MANIFEST (did the process run under the shim?)";
    return false;
  }
  if (!ParseManifest(text, &m, error)) return false;

  // Empty the data dir (keeping the directory itself).
  if (DIR* d = ::opendir(data_dir_.c_str())) {
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    for (const std::string& n : names) {
      if (!RemoveRecursively(data_dir_ + "/" + n)) {
        *error = "cannot remove " + data_dir_ + "/" + n;
        return false;
      }
    }
  } else if (::mkdir(data_dir_.c_str(), 0700) != 0) {
    *error = "cannot create " + data_dir_;
    return false;
  }

  // Materialize the durable tree; remember where each file id landed.
  std::map<uint64_t, std::vector<std::string>> placed;
  std::vector<std::pair<uint64_t, std::string>> todo = {{m.root, ""}};
  while (!todo.empty()) {
    auto [dir_id, rel] = todo.back();
    todo.pop_back();
    for (const Entry& e : m.dirs[dir_id]) {
      const std::string child_rel = rel + e.name;
      const std::string path = data_dir_ + "/" + child_rel;
      if (e.is_dir) {
        if (::mkdir(path.c_str(), 0700) != 0) {
          *error = "cannot create " + path;
          return false;
        }
        report->files.push_back(child_rel + "/");
        todo.push_back({e.id, child_rel + "/"});
        continue;
      }
      if (!CopyFile(shadow_dir_ + "/files/" + std::to_string(e.id), path, error)) return false;
      report->files.push_back(child_rel);
      placed[e.id].push_back(child_rel);
    }
  }
  std::sort(report->files.begin(), report->files.end());

  if (options.tear_last_write && options.sector > 0) {
    uint64_t best_id = 0;
    LastWrite best;
    uint64_t best_keep = 0;
    for (const auto& p : placed) {
      LastWrite lw;
      if (!ReadLastWrite(shadow_dir_ + "/files/" + std::to_string(p.first) + ".lw", &lw)) continue;
      uint64_t cut = (lw.offset + lw.len / 2) / options.sector * options.sector;
      if (cut <= lw.offset || lw.counter < best.counter) continue;
      best_id = p.first;
      best_keep = cut - lw.offset;
      best = std::move(lw);
    }
    if (best_keep > 0) {
      for (const std::string& rel : placed[best_id]) {
        if (!PwriteAt(data_dir_ + "/" + rel, best.offset, best.data.substr(0, best_keep))) {
          *error = "cannot tear " + rel;
          return false;
        }
      }
      report->torn_file = placed[best_id].front();
      report->torn_offset = best.offset;
      report->torn_kept = best_keep;
      report->torn_len = best.len;
    }
  }
  return true;
}

bool RestoreDurable(const std::string& data_dir, const std::string& shadow_dir,
                    const PowerCutOptions& options, PowerCutReport* report, std::string* error) {
  return PowerCut(data_dir, shadow_dir).Restore(options, report, error);
}

void CommitTimeline::Add(int64_t mono_us, uint64_t seq) {
  if (!points_.empty()) seq = std::max(seq, points_.back().second);
  points_.emplace_back(mono_us, seq);
}

uint64_t CommitTimeline::SeqAt(int64_t mono_us) const {
  uint64_t seq = 0;
  for (const auto& p : points_) {
    if (p.first > mono_us) break;
    seq = p.second;
  }
  return seq;
}

}  // namespace testing
}  // namespace sluice
