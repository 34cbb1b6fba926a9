// `sluice export` of a large buffer.db (streams with bounded memory;
// progress only on a terminal) and `sluice buffer check` on corrupt files
// (exit 1, nothing changed). Real sluiced, real files, a real pty (script).
#include <dirent.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/integration/cli_test_util.h"

namespace sluice {
namespace testing {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

size_t CountLines(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// Pushes `n` readings of sensors big.0 .. big.7 and waits until committed.
void Fill(const Gateway& gw, int n) {
  int fd = -1;
  WaitUntil([&] { return (fd = ConnectUnix(gw.push_sock)) >= 0; }, 10000000, 20000);
  REQUIRE(fd >= 0);
  std::string chunk;
  for (int i = 0; i < n; ++i) {
    chunk += "big." + std::to_string(i % 8) + " " + std::to_string(i) + ".25\n";
    if (chunk.size() > 65536 || i + 1 == n) {
      REQUIRE(SendAll(fd, chunk));
      chunk.clear();
    }
  }
  close(fd);
  REQUIRE(WaitUntil([&] { return ReadBufferDb(gw.spec.data_dir).rows >= static_cast<uint64_t>(n); },
                    180000000, 100000));
}

std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) out.push_back(e->d_name);
    closedir(d);
  }
  return out;
}

TEST_CASE("export of 200k events streams with bounded memory; progress only on a terminal",
          "[cli][export]") {
  constexpr int kRows = 200000;
  Gateway gw("");
  Sluiced daemon(gw.config, gw.dir.Join("sluiced.log"));
  std::string error;
  REQUIRE(daemon.Start(&error));
  Fill(gw, kRows);
  REQUIRE(ExitCode(daemon.Terminate()) == 0);
  const std::string data = gw.spec.data_dir;

  // Header only (nothing matches) against all 200,000 rows: the peak RSS of
  // the process must not grow with what it exports (a buffered export would
  // hold ~15 MB of CSV, more as rows). ASan's allocator keeps freed memory
  // (quarantine, caches), so there the bound is checked by the native build.
  CliRun small = RunCli({"--data-dir", data, "export", "--sensor", "nothing"}, gw.dir.path());
  REQUIRE(small.code == 0);
  CHECK(small.out ==
        "seq,time,ts_us,kind,sensor,value,unit,quality,rule,state,severity,message,"
        "labels\n");
  for (const char* format : {"csv", "jsonl"}) {
    INFO(format);
    CliRun big = RunCli({"--data-dir", data, "export", "--format", format}, gw.dir.path());
    REQUIRE(big.code == 0);
    CHECK(big.err.empty());
    CHECK(CountLines(big.out) == kRows + (format[0] == 'c' ? 1 : 0));
    CHECK(big.out.size() > 12u * 1024 * 1024);
    INFO("peak RSS: export " << big.max_rss_kib << " KiB, header only " << small.max_rss_kib
                             << " KiB, output " << big.out.size() / 1024 << " KiB");
    if (!kSanitized) CHECK(big.max_rss_kib - small.max_rss_kib < 6 * 1024);
    // The last row is the newest event.
    size_t last = big.out.rfind('\n', big.out.size() - 2);
    const std::string tail = big.out.substr(last + 1);
    CHECK(tail.find(std::to_string(kRows - 1) + ".25") != std::string::npos);
  }

  // Under a terminal (script gives the command a pty for stderr), progress
  // and a summary go to stderr; stdout (the file) holds only the data.
  const std::string out_csv = gw.dir.Join("pty.csv");
  Process script;
  Process::Options so;
  so.argv = {"/usr/bin/script", "-qfec",
             "'" + SluicePath() + "' --data-dir '" + data + "' export > '" + out_csv + "'",
             "/dev/null"};
  so.stdout_path = gw.dir.Join("pty.typescript");
  REQUIRE(script.Start(so));
  auto st = script.Wait(120000000);
  REQUIRE(st);
  CHECK(ExitCode(*st) == 0);
  const std::string screen = ReadFile(so.stdout_path);
  INFO(screen.substr(0, 400));
  CHECK(screen.find("export: " + std::to_string(kRows) + " rows in ") != std::string::npos);
  CHECK(CountLines(ReadFile(out_csv)) == kRows + 1);
}

TEST_CASE("buffer check reports a corrupt buffer.db and leaves it byte for byte", "[cli][check]") {
  Gateway gw("");
  Sluiced daemon(gw.config, gw.dir.Join("sluiced.log"));
  std::string error;
  REQUIRE(daemon.Start(&error));
  Fill(gw, 5000);
  REQUIRE(ExitCode(daemon.Terminate()) == 0);
  const std::string data = gw.spec.data_dir;
  const std::string db = data + "/buffer.db";

  // A healthy file, daemon stopped: ok, and untouched.
  const std::string before = ReadFile(db);
  REQUIRE(before.size() > 64 * 1024);
  CliRun r = RunCli({"--data-dir", data, "buffer", "check"}, gw.dir.path());
  CHECK(r.code == 0);
  CHECK(r.out.find("buffer.db: ok") != std::string::npos);
  CHECK(ReadFile(db) == before);

  SECTION("a damaged b-tree page") {
    std::string bad = before;
    const size_t page = 4096 * (bad.size() / 4096 / 2);  // a page in the middle
    for (size_t i = 0; i < 200; ++i) bad[page + i] = static_cast<char>(0x5a ^ i);
    REQUIRE(WriteFile(db, bad));
    const auto entries = DirEntries(data);
    r = RunCli({"--data-dir", data, "buffer", "check"}, gw.dir.path());
    CHECK(r.code == 1);
    CHECK(r.out.find("FAIL  ") != std::string::npos);
    CHECK(r.out.find("nothing was changed") != std::string::npos);
    CHECK(ReadFile(db) == bad);
    CHECK(DirEntries(data).size() <= entries.size() + 1);  // at most the reader's -shm
    for (const std::string& e : DirEntries(data)) CHECK(e.find("corrupt") == std::string::npos);
    r = RunCli({"--data-dir", data, "buffer", "check", "--json"}, gw.dir.path());
    CHECK(r.code == 1);
    auto v = ParseJson(r.out);
    REQUIRE(v.ok());
    CHECK(!v->Find("ok")->AsBool());
    CHECK(!v->Find("problems")->items().empty());
    CHECK(ReadFile(db) == bad);
  }
  SECTION("not a database at all") {
    std::string bad = before;
    bad.replace(0, 16, "not sqlite here!");
    REQUIRE(WriteFile(db, bad));
    r = RunCli({"--data-dir", data, "buffer", "check"}, gw.dir.path());
    CHECK(r.code == 1);
    CHECK(r.out.find("not an SQLite database") != std::string::npos);
    CHECK(ReadFile(db) == bad);
  }
  SECTION("a seq reservation below the committed seqs") {
    REQUIRE(WriteFile(data + "/buffer.seq", "10\n"));
    r = RunCli({"--data-dir", data, "buffer", "check"}, gw.dir.path());
    CHECK(r.code == 1);
    CHECK(r.out.find("FAIL  buffer.seq reserves up to 10") != std::string::npos);
  }
}

}  // namespace
}  // namespace testing
}  // namespace sluice
