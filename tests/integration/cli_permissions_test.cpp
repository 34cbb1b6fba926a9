// The CLI and push clients run as a user outside the daemon's group:
//  - the history commands on a data_dir they may not read (a root-owned
//    0750 directory, as packaged) name the cause (permission denied),
//    never "no such file";
//  - the live commands against a running sluiced whose control socket is
//    0660 root:<daemon's group> exit 1 with "permission denied", while a
//    member of that group is served;
//  - a push client without access to the push sockets (unix stream and
//    datagram, 0660 like the control socket) is refused and nothing it sent
//    is ingested, while a member's readings are.
// Needs root to make the directories and drop to `nobody` (fork, setgid,
// setuid); otherwise the test exits 77 (skipped).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <cstdlib>
#include <string>
#include <vector>

#include "buffer/ring.h"
#include "common/clock.h"
#include "tests/integration/it_support.h"
#include "tests/support/support.h"

namespace sluice {
namespace {

using testing::TempDir;

constexpr uid_t kNobody = 65534;  // also nogroup's gid: outside every group of the daemon
constexpr int kSkip = 77;  // SKIP_RETURN_CODE of this test

struct Run {
  int code = -1;
  std::string err;
};

// Waits (bounded: 60 s, then SIGKILL) for a forked child; its exit code,
// -1 if it did not exit normally.
int WaitChild(pid_t pid) {
  int status = 0;
  pid_t got = 0;
  for (int i = 0; i < 6000 && (got = waitpid(pid, &status, WNOHANG)) == 0; ++i) usleep(10000);
  if (got == 0) {
    kill(pid, SIGKILL);
    got = waitpid(pid, &status, 0);
  }
  REQUIRE(got == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// In a forked child: drops every privilege to uid `nobody` with only `gid`.
void DropTo(gid_t gid) {
  if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(kNobody) != 0) _exit(125);
}

// Runs `sluice ARGS` as uid `nobody`, gid `gid`. `binary`: a copy of sluice
// that nobody may reach and run (the build tree may sit below a directory
// only root can enter, e.g. a 0700 mktemp dir).
Run RunAs(gid_t gid, const std::string& binary, const std::vector<std::string>& args,
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
    DropTo(gid);
    execv(argv[0], argv.data());
    _exit(127);
  }
  REQUIRE(pid > 0);
  r.code = WaitChild(pid);
  r.err = testing::ReadFile(err_path);
  return r;
}

// Sends `payload` as uid `nobody`, gid `gid`, to the unix socket `path`
// (SOCK_STREAM: connect and send; SOCK_DGRAM: one datagram). 0 if it was
// sent, else the errno that refused it.
int SendAs(gid_t gid, const std::string& path, int type, const std::string& payload) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(path.size() < sizeof addr.sun_path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  const auto* sa = reinterpret_cast<const sockaddr*>(&addr);
  pid_t pid = fork();
  if (pid == 0) {
    DropTo(gid);
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    if (fd < 0) _exit(126);
    ssize_t n = 0;
    if (type == SOCK_STREAM) {
      if (connect(fd, sa, sizeof addr) != 0) _exit(errno);
      n = send(fd, payload.data(), payload.size(), MSG_NOSIGNAL);
    } else {
      n = sendto(fd, payload.data(), payload.size(), 0, sa, sizeof addr);
    }
    if (n != static_cast<ssize_t>(payload.size())) _exit(n < 0 ? errno : 124);
    close(fd);
    _exit(0);
  }
  REQUIRE(pid > 0);
  return WaitChild(pid);
}

size_t Rows(const testing::DbSnapshot& db, const std::string& sensor) {
  size_t n = 0;
  for (const auto& kv : db.events) n += kv.second.sensor == sensor;
  return n;
}

TEST_CASE("live commands and push clients outside the daemon's group are refused", "[cli]") {
  if (geteuid() != 0) std::exit(kSkip);  // cannot drop to nobody
  TempDir dir;
  // Everyone may reach the sockets: only their own mode may refuse.
  REQUIRE(chmod(dir.path().c_str(), 0755) == 0);
  const std::string scratch = dir.path() + "/scratch";
  REQUIRE(mkdir(scratch.c_str(), 0777) == 0);
  REQUIRE(chmod(scratch.c_str(), 0777) == 0);
  const std::string sluice = dir.path() + "/sluice";
  REQUIRE(testing::WriteFile(sluice, testing::ReadFile(testing::BinDir() + "/sluice")));
  REQUIRE(chmod(sluice.c_str(), 0755) == 0);

  testing::ConfigSpec spec;
  spec.data_dir = dir.path() + "/data";
  spec.control_socket = dir.path() + "/control.sock";
  const std::string stream = dir.path() + "/push.sock";
  const std::string dgram = dir.path() + "/push.dgram";
  spec.sensors = {testing::PushSensor("stream", "unix://" + stream),
                  testing::PushSensor("dgram", "unixgram://" + dgram)};
  REQUIRE(testing::WriteFile(dir.path() + "/sluiced.toml", spec.ToToml()));
  testing::Sluiced d(dir.path() + "/sluiced.toml", dir.path() + "/sluiced.log");
  std::string err;
  REQUIRE(d.Start(&err));
  INFO("sluiced log:\n" << d.Log());

  // sluiced runs as root here: its group is root's, nobody is outside it.
  const gid_t group = getegid();
  REQUIRE(group != kNobody);
  for (const std::string& path : {spec.control_socket, stream, dgram}) {
    struct stat st;
    REQUIRE(stat(path.c_str(), &st) == 0);
    INFO(path);
    CHECK((st.st_mode & 07777) == 0660);
    CHECK(st.st_gid == group);
  }

  for (const char* command : {"status", "metrics"}) {
    const std::vector<std::string> args = {"--socket", spec.control_socket, command};
    const Run outsider = RunAs(kNobody, sluice, args, scratch);
    INFO("sluice " << command << " outside the group: exit " << outsider.code
                   << ", stderr: " << outsider.err);
    CHECK(outsider.code == 1);
    CHECK(outsider.err.find("permission denied") != std::string::npos);
    const Run member = RunAs(group, sluice, args, scratch);
    INFO("sluice " << command << " in the group: exit " << member.code
                   << ", stderr: " << member.err);
    CHECK(member.code == 0);
  }

  // Push: the outsider is refused on both sockets, a member gets through.
  CHECK(SendAs(kNobody, stream, SOCK_STREAM, "perm.outsider 1\n") == EACCES);
  CHECK(SendAs(kNobody, dgram, SOCK_DGRAM, "perm.outsider 2\n") == EACCES);
  CHECK(SendAs(group, stream, SOCK_STREAM, "perm.member 1\n") == 0);
  CHECK(SendAs(group, dgram, SOCK_DGRAM, "perm.member 2\n") == 0);
  testing::DbSnapshot db;
  CHECK(testing::WaitUntil([&] {
    db = testing::ReadBufferDb(spec.data_dir, true);
    return Rows(db, "perm.member") == 2;
  }, 10000000, 50000));
  CHECK(Rows(db, "perm.outsider") == 0);  // nothing the outsider sent was ingested
  CHECK(d.Alive());
  const int status = d.Terminate();
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
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
    const Run r = RunAs(kNobody, sluice, args, scratch);
    INFO("sluice " << args[2] << ": exit " << r.code << ", stderr: " << r.err);
    CHECK(r.code == 1);
    CHECK(r.err.find("buffer.db: Permission denied") != std::string::npos);
    CHECK(r.err.find("no such file") == std::string::npos);
  }
}

}  // namespace
}  // namespace sluice
