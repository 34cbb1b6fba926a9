// The history commands run by a user who may not read the data_dir (a
// root-owned 0750 directory, as packaged): every failure names its cause
// (permission denied), never "no such file". Needs root to make the
// directory and drop to `nobody`; otherwise the test exits 77 (skipped).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "buffer/ring.h"
#include "common/clock.h"
#include "tests/support/support.h"

namespace sluice {
namespace {

using testing::TempDir;

constexpr uid_t kNobody = 65534;
constexpr int kSkip = 77;  // SKIP_RETURN_CODE of this test

struct Run {
  int code = -1;
  std::string err;
};

// Runs `sluice ARGS` as uid/gid `nobody` (bounded: 60 s, then SIGKILL).
// `binary`: a copy of sluice that nobody may reach and run (the build tree
// may sit below a directory only root can enter, e.g. a 0700 mktemp dir).
Run RunAsNobody(const std::string& binary, const std::vector<std::string>& args,
                const std::string& scratch) {
  const std::string err_path = scratch + "/err";
  std::vector<std::string> argv_s = {binary};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(&a[0]);
  argv.push_back(nullptr);
  Run r;
  pid_t pid = fork();
  if (pid == 0) {
    int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int o = open("/dev/null", O_WRONLY);
    if (e < 0 || o < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
    if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(125);
    execv(argv[0], argv.data());
    _exit(127);
  }
  REQUIRE(pid > 0);
  int status = 0;
  pid_t got = 0;
  for (int i = 0; i < 6000 && (got = waitpid(pid, &status, WNOHANG)) == 0; ++i) usleep(10000);
  if (got == 0) {
    kill(pid, SIGKILL);
    got = waitpid(pid, &status, 0);
  }
  REQUIRE(got == pid);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = testing::ReadFile(err_path);
  return r;
}

TEST_CASE("history commands on an unreadable data_dir say permission denied", "[cli]") {
  if (geteuid() != 0) std::exit(kSkip);  // cannot make a root-owned dir or drop to nobody
  TempDir dir;
  REQUIRE(chmod(dir.path().c_str(), 0755) == 0);  // nobody may reach data/ and the rules
  const std::string data = dir.path() + "/data";
  const std::string scratch = dir.path() + "/scratch";
  REQUIRE(mkdir(data.c_str(), 0750) == 0);
  REQUIRE(mkdir(scratch.c_str(), 0777) == 0);
  REQUIRE(chmod(scratch.c_str(), 0777) == 0);
  {
    RingOptions o;
    o.data_dir = data;
    o.durability = Durability::kOff;
    o.upstreams = {"cloud"};
    auto ring = Ring::Open(o, SystemClock::Get());
    REQUIRE(ring.ok());
    REQUIRE((*ring)->Stop().ok());
  }
  const std::string sluice = dir.path() + "/sluice";
  REQUIRE(testing::WriteFile(sluice, testing::ReadFile(testing::BinDir() + "/sluice")));
  REQUIRE(chmod(sluice.c_str(), 0755) == 0);
  const std::string rules = dir.path() + "/rules.toml";
  REQUIRE(testing::WriteFile(rules, "[[rule]]\nname = \"hot\"\nwhen = \"t > 1\"\n"));
  REQUIRE(chmod(rules.c_str(), 0644) == 0);

  const std::vector<std::vector<std::string>> commands = {
      {"--data-dir", data, "tail"},
      {"--data-dir", data, "alerts"},
      {"--data-dir", data, "export"},
      {"--data-dir", data, "rules", "backtest", rules},
  };
  for (const auto& args : commands) {
    const Run r = RunAsNobody(sluice, args, scratch);
    INFO("sluice " << args[2] << ": exit " << r.code << ", stderr: " << r.err);
    CHECK(r.code == 1);
    CHECK(r.err.find("buffer.db: Permission denied") != std::string::npos);
    CHECK(r.err.find("no such file") == std::string::npos);
  }
}

}  // namespace
}  // namespace sluice
