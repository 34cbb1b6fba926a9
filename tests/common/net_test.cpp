// The socket seam (common/net.h): unix sockets bound with an exact mode,
// stale sockets replaced, live sockets and other files left alone; TCP and
// UDP on loopback.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common/net.h"
#include "tests/support/support.h"

using namespace sluice;
using sluice::testing::ReadFile;
using sluice::testing::TempDir;
using sluice::testing::WriteFile;

namespace {

mode_t ModeOf(const std::string& path) {
  struct stat st;
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

struct Umask {
  explicit Umask(mode_t m) : old(::umask(m)) {}
  ~Umask() { ::umask(old); }
  mode_t old;
};

// What a crash leaves behind: a socket file nobody serves any more.
void LeaveStaleSocket(const std::string& path, int type) {
  int fd = ::socket(AF_UNIX, type, 0);
  REQUIRE(fd >= 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), path.size());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  ::close(fd);
}

}  // namespace

TEST_CASE("BindUnix: the socket file has exactly the mode asked for, under any umask") {
  TempDir dir;
  for (mode_t umask_value : {mode_t{0}, mode_t{022}, mode_t{077}}) {
    Umask u(umask_value);
    for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
      const std::string path = dir.Join("s" + std::to_string(umask_value) + "-" +
                                        std::to_string(type));
      StatusOr<BoundUnixSocket> b = BindUnix(path, 0660, type, 16);
      REQUIRE(b.ok());
      CHECK(b->fd.valid());
      CHECK_FALSE(b->replaced_stale);
      CHECK(ModeOf(path) == 0660);
      CHECK(UnixSocketAnswers(path, type));
      struct stat st;
      REQUIRE(::stat(path.c_str(), &st) == 0);
      CHECK((b->dev == st.st_dev && b->ino == st.st_ino));
    }
  }
}

TEST_CASE("BindUnix: a stale socket is replaced, a live one is refused and kept") {
  TempDir dir;
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    const std::string path = dir.Join("s" + std::to_string(type));
    LeaveStaleSocket(path, type);
    CHECK_FALSE(UnixSocketAnswers(path, type));
    StatusOr<BoundUnixSocket> first = BindUnix(path, 0600, type, 16);
    REQUIRE(first.ok());
    CHECK(first->replaced_stale);
    CHECK(ModeOf(path) == 0600);

    StatusOr<BoundUnixSocket> second = BindUnix(path, 0600, type, 16);
    REQUIRE_FALSE(second.ok());
    CHECK(second.status().code() == StatusCode::kUnavailable);
    CHECK(second.status().message() == "address in use: another process listens on " + path);
    CHECK(UnixSocketAnswers(path, type));  // the live socket still serves
  }
}

TEST_CASE("BindUnix: a regular file, directory or symlink at the path is never replaced") {
  TempDir dir;
  const std::string file = dir.Join("file");
  REQUIRE(WriteFile(file, "precious"));
  const std::string sub = dir.Join("dir");
  REQUIRE(::mkdir(sub.c_str(), 0755) == 0);
  const std::string link = dir.Join("link");
  REQUIRE(::symlink(file.c_str(), link.c_str()) == 0);
  for (const std::string& path : {file, sub, link}) {
    StatusOr<BoundUnixSocket> b = BindUnix(path, 0660, SOCK_STREAM, 16);
    REQUIRE_FALSE(b.ok());
    CHECK(b.status().code() == StatusCode::kInvalidArgument);
    CHECK(b.status().message() == path + " exists and is not a socket; not replacing it");
  }
  CHECK(ReadFile(file) == "precious");
  struct stat st;
  CHECK((::lstat(link.c_str(), &st) == 0 && S_ISLNK(st.st_mode)));
}

TEST_CASE("BindUnix: a missing directory or an overlong path is an error, not a crash") {
  TempDir dir;
  const std::string missing = dir.Join("nope/s.sock");
  StatusOr<BoundUnixSocket> b = BindUnix(missing, 0660, SOCK_STREAM, 16);
  REQUIRE_FALSE(b.ok());
  CHECK(b.status().code() == StatusCode::kIoError);
  CHECK(b.status().message() == "bind " + missing + ": No such file or directory");

  const std::string too_long = "/tmp/" + std::string(MaxUnixSocketPath(), 'x');
  b = BindUnix(too_long, 0660, SOCK_STREAM, 16);
  REQUIRE_FALSE(b.ok());
  CHECK(b.status().code() == StatusCode::kInvalidArgument);
  CHECK(b.status().message().find("is empty or longer than 107 bytes") != std::string::npos);
  CHECK(BindUnix("", 0660, SOCK_STREAM, 16).status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("BindInet: loopback TCP and UDP, the kernel's port read back, bad hosts refused") {
  StatusOr<BoundInetSocket> tcp = BindInet("127.0.0.1", 0, SOCK_STREAM, 16);
  REQUIRE(tcp.ok());
  CHECK(tcp->port > 0);
  CHECK(sluice::testing::PortAcceptsConnections(tcp->port));

  StatusOr<BoundInetSocket> udp = BindInet("127.0.0.1", 0, SOCK_DGRAM, 0);
  REQUIRE(udp.ok());
  CHECK(udp->port > 0);

  StatusOr<BoundInetSocket> taken = BindInet("127.0.0.1", tcp->port, SOCK_STREAM, 16);
  REQUIRE_FALSE(taken.ok());
  CHECK(taken.status().code() == StatusCode::kIoError);
  CHECK(taken.status().message() ==
        "bind 127.0.0.1:" + std::to_string(tcp->port) + ": Address already in use");

  StatusOr<BoundInetSocket> bad = BindInet("localhost", 0, SOCK_STREAM, 16);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().code() == StatusCode::kInvalidArgument);
  CHECK(bad.status().message() == "bad address localhost:0");
  CHECK(BindInet("::g", 0, SOCK_STREAM, 16).status().message() == "bad address [::g]:0");
}
