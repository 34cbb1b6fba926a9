// Storage that fails under a running sluiced, against real processes: a
// commit that cannot be made holds what it could not commit, holds the
// stream senders back and turns the daemon unhealthy until storage comes
// back; a deleted buffer.db loses nothing. (Root ignores permissions, so
// "storage refuses" is a directory where the seq floor's temp file goes:
// the same failing write a chmod 000 data dir gives a non-root daemon.)
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "buffer/inspect.h"
#include "tests/integration/cli_live_util.h"

namespace sluice {
namespace testing {
namespace {

double Field(const JsonValue& v, const char* object, const char* key) {
  const JsonValue* o = v.Find(object);
  const JsonValue* f = o ? o->Find(key) : nullptr;
  return f && f->is_number() ? f->AsNumber() : -1;
}

std::string Text(const JsonValue& v, const char* object, const char* key) {
  const JsonValue* o = v.Find(object);
  const JsonValue* f = o ? o->Find(key) : nullptr;
  return f && f->is_string() ? f->AsString() : "";
}

bool Healthy(const JsonValue& v) {
  const JsonValue* a = v.Find("agent");
  const JsonValue* h = a ? a->Find("healthy") : nullptr;
  return h && h->AsBool();
}

// Polls status (bounded) until pred holds; the last status in *out.
template <typename Pred>
bool WaitStatus(LiveSetup& s, JsonValue* out, Pred pred, int64_t timeout_us = 30000000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(timeout_us);
  while (std::chrono::steady_clock::now() < end) {
    if (s.Status(out) && pred(*out)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

void StartOrFail(LiveSetup& s) {
  std::string err;
  const bool started = s.d.Start(&err);
  INFO(err << "\n" << s.d.Log());
  REQUIRE(started);
}

std::string Lines(int from, int n) {
  std::string out;
  for (int i = from; i < from + n; ++i) out += "p.x " + std::to_string(i) + "\n";
  return out;
}

TEST_CASE("failing storage: nothing lost, senders held back, unhealthy until it recovers",
          "[integration][faults]") {
  LiveOptions lo;
  lo.sensor_interval = "";  // only what the test pushes
  lo.max_events = 1000000;
  LiveSetup s("mqtt://127.0.0.1:" + std::to_string(FreeLoopbackPort()), lo);
  const std::string data = s.dir.Join("data");
  StartOrFail(s);
  int fd = ConnectUnix(s.push_sock);
  REQUIRE(fd >= 0);
  REQUIRE(SendAll(fd, Lines(0, 10)));
  JsonValue st;
  REQUIRE(WaitStatus(s, &st, [](const JsonValue& v) { return Field(v, "buffer", "last_seq") == 10; }));
  ::close(fd);
  REQUIRE(ExitStatus(s.d.Terminate()) == 0);

  // 50 seqs of reservation left; then the floor must be written, and cannot.
  REQUIRE(WriteFile(data + "/buffer.seq", SeqFloorText(60)));
  REQUIRE(WriteFile(data + "/buffer.floor", SeqFloorText(60)));
  const std::string blocker = data + "/buffer.floor.tmp";
  REQUIRE(::mkdir(blocker.c_str(), 0700) == 0);
  StartOrFail(s);

  // More than the writer's queue (65,536) and the socket can take.
  constexpr int kLines = 200000;
  std::atomic<int> sent{0};
  std::atomic<bool> sender_ok{true};
  std::thread sender([&] {
    int c = ConnectUnix(s.push_sock);
    if (c < 0) {
      sender_ok = false;
      return;
    }
    for (int i = 0; i < kLines; i += 1000) {
      if (!SendAll(c, Lines(10 + i, 1000))) {
        sender_ok = false;
        break;
      }
      sent += 1000;
    }
    ::close(c);
  });
  REQUIRE(WaitStatus(s, &st, [](const JsonValue& v) {
    return !Healthy(v) && Field(v, "buffer", "held_events") > 0;
  }));
  CHECK(Text(st, "agent", "unhealthy_reason").find("commits failing") != std::string::npos);
  CHECK(!Text(st, "buffer", "last_commit_error").empty());
  CHECK(Field(st, "buffer", "commit_failing_since_us") > 0);
  CHECK(Field(st, "buffer", "last_seq") <= 60);
  // The sender is held back, not answered by drops.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  CHECK(sent.load() < kLines);
  REQUIRE(s.Status(&st));
  CHECK(Field(st, "buffer", "dropped") == 0);
  CHECK(Field(st, "buffer", "failed_events") == 0);
  RunResult text = RunCli({"--socket", s.sock, "status"}, s.dir.path());
  CHECK(text.out.find("UNHEALTHY") != std::string::npos);
  CHECK(text.out.find("COMMITS FAILING") != std::string::npos);
  std::string metrics = RunCli({"--socket", s.sock, "metrics"}, s.dir.path()).out;
  CHECK(metrics.find("sluice_healthy 0") != std::string::npos);
  CHECK(metrics.find("sluice_buffer_commits_failing 1") != std::string::npos);

  // Storage is back: everything arrives, in order, and the daemon is healthy.
  REQUIRE(::rmdir(blocker.c_str()) == 0);
  sender.join();
  CHECK(sender_ok.load());
  CHECK(sent.load() == kLines);
  REQUIRE(WaitStatus(s, &st, [](const JsonValue& v) {
    return Healthy(v) && Field(v, "buffer", "last_seq") == 10 + kLines;
  }, 60000000));
  CHECK(Field(st, "buffer", "held_events") == 0);
  CHECK(Field(st, "buffer", "commit_failing_since_us") < 0);  // null
  REQUIRE(ExitStatus(s.d.Terminate()) == 0);
  DbSnapshot db = ReadBufferDb(data);
  REQUIRE(db.ok);
  CHECK(db.rows == 10 + static_cast<uint64_t>(kLines));
  CHECK(db.min_seq == 1);
  CHECK(db.max_seq == 10 + static_cast<uint64_t>(kLines));
}

TEST_CASE("buffer.db deleted under a running sluiced: nothing committed is lost",
          "[integration][faults]") {
  LiveOptions lo;
  lo.sensor_interval = "";
  LiveSetup s("mqtt://127.0.0.1:" + std::to_string(FreeLoopbackPort()), lo);
  const std::string data = s.dir.Join("data");
  StartOrFail(s);
  int fd = ConnectUnix(s.push_sock);
  REQUIRE(fd >= 0);
  REQUIRE(SendAll(fd, Lines(0, 500)));
  JsonValue st;
  REQUIRE(WaitStatus(s, &st, [](const JsonValue& v) { return Field(v, "buffer", "last_seq") == 500; }));
  REQUIRE(::unlink((data + "/buffer.db").c_str()) == 0);
  REQUIRE(SendAll(fd, Lines(500, 500)));
  const bool moved = WaitStatus(s, &st, [](const JsonValue& v) {
    return Field(v, "buffer", "last_seq") == 1000 && Field(v, "buffer", "file_replacements") == 1;
  });
  INFO(s.d.Log());
  REQUIRE(moved);
  CHECK(s.d.Log().find("was deleted") != std::string::npos);
  ::close(fd);
  REQUIRE(ExitStatus(s.d.Terminate()) == 0);
  DbSnapshot db = ReadBufferDb(data);
  REQUIRE(db.ok);
  CHECK(db.rows == 1000);
  CHECK(db.min_seq == 1);
  CHECK(db.max_seq == 1000);
}

}  // namespace
}  // namespace testing
}  // namespace sluice
