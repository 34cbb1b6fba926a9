// The power-cut shim and RestoreDurable (tests/support/powercut.h): a
// writer program runs one pattern of file operations under the shim and
// exits abruptly; after RestoreDurable the data dir must hold exactly what
// was made durable. Every check here fails with a shim that treats
// everything as durable or nothing as durable.
#include "tests/support/powercut.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "tests/support/process.h"
#include "tests/support/support.h"

namespace sluice {
namespace testing {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

struct Cut {
  TempDir tmp;
  std::string data = tmp.Join("data");
  PowerCut cut{data, tmp.Join("shadow")};
  Cut() { REQUIRE(::mkdir(data.c_str(), 0700) == 0); }
  std::string F(const std::string& name) const { return data + "/" + name; }

  // Runs the writer's `scenario` under the shim, then restores.
  PowerCutReport Run(const std::string& scenario, PowerCutOptions options = {}) {
    Process p;
    Process::Options o;
    o.argv = {SLUICE_POWERCUT_WRITER_PATH, scenario, data};
    o.extra_env = cut.Env();
    o.stderr_path = tmp.Join("writer.err");
    std::string err;
    REQUIRE(p.Start(o, &err));
    auto status = p.Wait(20000000);
    REQUIRE(status);
    INFO(ReadFile(tmp.Join("writer.err")));
    REQUIRE(DescribeWaitStatus(*status) == "exit 0");
    PowerCutReport report;
    REQUIRE(cut.Restore(options, &report, &err));
    INFO(err);
    return report;
  }
};

int64_t CountRows(const std::string& db_path) {
  if (!Exists(db_path)) return 0;
  sqlite3* db = nullptr;
  int64_t rows = -1;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      rows = sqlite3_column_int64(st, 0);
    } else {
      rows = 0;  // no table: nothing survived
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return rows;
}

TEST_CASE("powercut: fsynced data survives, unsynced data and undurable entries vanish",
          "[powercut]") {
  Cut c;
  PowerCutReport report = c.Run("data");
  INFO(report.Describe());
  CHECK(ReadFile(c.F("a")) == "durable");  // synced bytes kept, later writes gone
  CHECK(Exists(c.F("c")));                 // entry durable (dir synced) ...
  CHECK(ReadFile(c.F("c")).empty());       // ... its data never synced
  CHECK(ReadFile(c.F("d")) == "one,two");  // O_APPEND and dup'd fd, synced part
  CHECK_FALSE(Exists(c.F("b")));           // fdatasync'd, directory not synced
  CHECK_FALSE(Exists(c.F("e")));           // fsync'd, directory not synced
  CHECK(report.files == std::vector<std::string>{"a", "c", "d"});
}

TEST_CASE("powercut: files present at start survive as they were", "[powercut]") {
  Cut c;
  REQUIRE(::mkdir(c.F("sub").c_str(), 0700) == 0);
  REQUIRE(WriteFile(c.F("sub/kept"), "kept"));
  REQUIRE(WriteFile(c.F("target"), "v1"));
  REQUIRE(WriteFile(c.F("doomed"), "x"));
  c.Run("rename");
  // Rename, unlink and creations without a directory sync are undone.
  CHECK(ReadFile(c.F("target")) == "v1");
  CHECK_FALSE(Exists(c.F("target.tmp")));
  CHECK(ReadFile(c.F("doomed")) == "x");
  CHECK_FALSE(Exists(c.F("sub/new")));
  CHECK(ReadFile(c.F("sub/kept")) == "kept");
}

TEST_CASE("powercut: a rename, unlink or creation is durable after the directory sync",
          "[powercut]") {
  Cut c;
  REQUIRE(::mkdir(c.F("sub").c_str(), 0700) == 0);
  REQUIRE(WriteFile(c.F("target"), "v1"));
  REQUIRE(WriteFile(c.F("doomed"), "x"));
  c.Run("rename-synced");
  CHECK(ReadFile(c.F("target")) == "v2");
  CHECK_FALSE(Exists(c.F("target.tmp")));
  CHECK_FALSE(Exists(c.F("doomed")));
  CHECK(ReadFile(c.F("sub/new")) == "new file");  // writev
}

TEST_CASE("powercut: size changes are durable only once synced", "[powercut]") {
  const std::string big(100, 'x');
  SECTION("not synced") {
    Cut c;
    REQUIRE(WriteFile(c.F("big"), big));
    REQUIRE(WriteFile(c.F("small"), "small content"));
    c.Run("truncate");
    CHECK(ReadFile(c.F("big")) == big);
    CHECK(ReadFile(c.F("small")) == "small content");  // O_TRUNC undone
  }
  SECTION("synced") {
    Cut c;
    REQUIRE(WriteFile(c.F("big"), big));
    REQUIRE(WriteFile(c.F("small"), "small content"));
    c.Run("truncate-synced");
    // Shrunk to 10, regrown to 20: the regrown part is zeros, not old bytes.
    CHECK(ReadFile(c.F("big")) == std::string(10, 'x') + std::string(10, '\0'));
    CHECK(ReadFile(c.F("small")).empty());
  }
}

TEST_CASE("powercut: the torn variant keeps a sector-aligned prefix of the last write",
          "[powercut]") {
  SECTION("whole cut") {
    Cut c;
    PowerCutReport report = c.Run("torn");
    CHECK(ReadFile(c.F("torn")) == std::string(4096, 'a'));
    CHECK(report.torn_file.empty());
  }
  SECTION("torn") {
    Cut c;
    PowerCutOptions o;
    o.tear_last_write = true;
    PowerCutReport report = c.Run("torn", o);
    INFO(report.Describe());
    CHECK(ReadFile(c.F("torn")) == std::string(4096, 'a') + std::string(2048, 'b'));
    CHECK(report.torn_file == "torn");
    CHECK(report.torn_offset == 4096);
    CHECK(report.torn_kept == 2048);
    CHECK(report.torn_len == 4096);
  }
}

TEST_CASE("powercut: msync(MS_SYNC) makes a shared mapping's range durable", "[powercut]") {
  Cut c;
  c.Run("mmap");
  std::string got = ReadFile(c.F("mapped"));
  REQUIRE(got.size() == 4096);
  CHECK(got.substr(0, 6) == "synced");
  CHECK(got.substr(100, 8) == std::string(8, '\0'));
}

TEST_CASE("powercut: SQLite WAL commits survive with synchronous=FULL, not with OFF",
          "[powercut]") {
  SECTION("FULL") {
    Cut c;
    c.Run("sqlite-full");
    CHECK(CountRows(c.F("t.db")) == 10);
  }
  SECTION("OFF") {
    Cut c;
    c.Run("sqlite-off");
    CHECK(CountRows(c.F("t.db")) == 0);
  }
}

TEST_CASE("powercut: CommitTimeline answers what was reported by a time", "[powercut]") {
  CommitTimeline t;
  t.Add(100, 5);
  t.Add(200, 9);
  t.Add(300, 7);  // never goes down
  CHECK(t.SeqAt(50) == 0);
  CHECK(t.SeqAt(100) == 5);
  CHECK(t.SeqAt(250) == 9);
  CHECK(t.SeqAt(1000) == 9);
  CHECK(t.last() == 9);
}

}  // namespace
}  // namespace testing
}  // namespace sluice
