// The filesystem seam (common/fs.h): owned fds, atomic durable whole-file
// writes, directory and file fsync, and their error paths.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "common/fs.h"
#include "tests/support/support.h"

using namespace sluice;
using sluice::testing::ReadFile;
using sluice::testing::TempDir;
using sluice::testing::WriteFile;

namespace {

bool FdOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

mode_t ModeOf(const std::string& path) {
  struct stat st;
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// Sets the umask for one scope (tests are single-threaded).
struct Umask {
  explicit Umask(mode_t m) : old(::umask(m)) {}
  ~Umask() { ::umask(old); }
  mode_t old;
};

}  // namespace

TEST_CASE("UniqueFd closes what it owns, once, and hands it over on move or release") {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(raw >= 0);
  {
    UniqueFd a(raw);
    UniqueFd b(std::move(a));
    CHECK_FALSE(a.valid());
    CHECK(b.get() == raw);
    CHECK(FdOpen(raw));
  }
  CHECK_FALSE(FdOpen(raw));

  UniqueFd c(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int kept = c.release();
  CHECK_FALSE(c.valid());
  CHECK(FdOpen(kept));
  UniqueFd d(kept);
  CHECK(d.Close("/dev/null").ok());
  CHECK_FALSE(FdOpen(kept));
  CHECK(d.Close("/dev/null").ok());  // nothing left to close
}

TEST_CASE("WriteFileAtomic creates and replaces a file with the mode asked for") {
  TempDir dir;
  const std::string path = dir.Join("state");
  Umask open_umask(0);
  REQUIRE(WriteFileAtomic(dir.path(), path, "one\n", 0640).ok());
  CHECK(ReadFile(path) == "one\n");
  CHECK(ModeOf(path) == 0640);
  REQUIRE(WriteFileAtomic(dir.path(), path, "two, longer\n", 0644).ok());
  CHECK(ReadFile(path) == "two, longer\n");
  CHECK(ModeOf(path) == 0644);
  CHECK(::access((path + ".tmp").c_str(), F_OK) != 0);  // no tmp left behind
  {
    Umask narrow(077);
    REQUIRE(WriteFileAtomic(dir.path(), path, "three\n", 0644).ok());
    CHECK(ModeOf(path) == 0600);  // the umask still applies to a new file
  }
}

TEST_CASE("WriteFileAtomic errors name the step and leave the old file as it was") {
  TempDir dir;
  SECTION("missing directory: ENOENT at open") {
    const std::string missing = dir.Join("nope");
    Status s = WriteFileAtomic(missing, missing + "/f", "x", 0644);
    CHECK(s.code() == StatusCode::kIoError);
    CHECK(s.message() == "open " + missing + "/f.tmp: No such file or directory");
  }
  SECTION("the target is a non-empty directory: rename fails, tmp removed") {
    const std::string target = dir.Join("d");
    REQUIRE(::mkdir(target.c_str(), 0755) == 0);
    REQUIRE(WriteFile(target + "/inside", "keep"));
    Status s = WriteFileAtomic(dir.path(), target, "x", 0644);
    CHECK(s.code() == StatusCode::kIoError);
    CHECK(s.message().find("rename " + target + ".tmp to " + target + ": ") == 0);
    CHECK(::access((target + ".tmp").c_str(), F_OK) != 0);
    CHECK(ReadFile(target + "/inside") == "keep");
  }
  SECTION("the directory to fsync is missing: the file is in place, the error says so") {
    const std::string path = dir.Join("f");
    Status s = WriteFileAtomic(dir.Join("gone"), path, "new", 0644);
    CHECK(s.message() == "open " + dir.Join("gone") + ": No such file or directory");
    CHECK(ReadFile(path) == "new");
  }
}

TEST_CASE("WriteAll reports a full disk as kFull") {
  UniqueFd full(::open("/dev/full", O_WRONLY | O_CLOEXEC));
  REQUIRE(full.valid());
  Status s = WriteAll(full.get(), "abc", 3, "/dev/full");
  CHECK(s.code() == StatusCode::kFull);
  CHECK(s.message() == "write /dev/full: No space left on device");
}

TEST_CASE("FsyncDir and FsyncPath: existing paths sync, missing ones are errors unless allowed") {
  TempDir dir;
  const std::string file = dir.Join("f");
  REQUIRE(WriteFile(file, "x"));
  CHECK(FsyncDir(dir.path()).ok());
  CHECK(FsyncPath(file).ok());
  CHECK(FsyncDir(file).message() == "open " + file + ": Not a directory");
  CHECK(FsyncDir(dir.Join("gone")).code() == StatusCode::kIoError);
  CHECK(FsyncPath(dir.Join("gone")).message() ==
        "open " + dir.Join("gone") + ": No such file or directory");
  CHECK(FsyncPath(dir.Join("gone"), /*missing_ok=*/true).ok());
}

TEST_CASE("DirName") {
  CHECK(DirName("/var/lib/sluice/rules.state") == "/var/lib/sluice");
  CHECK(DirName("/x") == "/");
  CHECK(DirName("x") == ".");
  CHECK(DirName("a/b") == "a");
}
