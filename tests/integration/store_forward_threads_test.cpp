// One store-and-forward scenario through every thread of a whole sluiced:
// the scheduler (a simulated sensor), the push listener, the rules engine
// (two rules, one always firing), the writer and its sync thread, the
// uplink (a real mosquitto behind a TcpProxy that is cut twice), the
// control socket (status, tail, alerts while the link is down) and the
// /metrics listener. Built under ThreadSanitizer in CI (label tsan:
// scripts/test builds sluiced, sluice and this test with
// SLUICE_SANITIZE=thread and runs it with halt_on_error=1, so a data race
// in sluiced makes it exit 66 and this test fail); the native and ASan
// builds run it too. Every committed seq must reach the broker.
#include <catch2/catch.hpp>
#include <string>

#include "tests/integration/cli_live_util.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace testing {
namespace {

constexpr const char* kStatusTopic = "sluice/it-gw/status";

double Num(const JsonValue& v, const char* path) {
  const JsonValue* n = v.AtPath(path);
  return n && n->is_number() ? n->AsNumber() : -1;
}

TEST_CASE("store and forward with link cuts through every thread of sluiced",
          "[integration][threads]") {
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());
  LiveSetup s(proxy.url());
  REQUIRE(s.d.Start(&err));
  Pusher pusher(s.push_sock, "threads.p", 200);
  pusher.Start();

  JsonValue st;
  auto acked_at_least = [&](double n) {
    return WaitUntil([&] { return s.Status(&st) && Num(st, "$.upstreams[0].acked_seq") >= n; },
                     60000000, 100000);
  };
  REQUIRE(acked_at_least(50));
  for (int cut = 0; cut < 2; ++cut) {
    proxy.Cut();
    // While the link is down: readings keep being committed, the control
    // socket and /metrics answer, the uplink says it is disconnected.
    const double before = Num(st, "$.buffer.last_seq");
    bool saw_down = false;
    for (int i = 0; i < 15; ++i) {
      REQUIRE(s.Status(&st));
      const JsonValue* connected = st.AtPath("$.upstreams[0].connected");
      if (connected && !connected->AsBool()) saw_down = true;
      // History commands read the ring beside the running writer.
      RunResult tail = RunCli({"--config", s.config, "tail", "-n", "5"}, s.dir.path());
      INFO(tail.err);
      CHECK(ExitStatus(tail.status) == 0);
      RunResult alerts = RunCli({"--config", s.config, "alerts", "--active"}, s.dir.path());
      INFO(alerts.err);
      CHECK(ExitStatus(alerts.status) == 0);
      CHECK(HttpGet(s.metrics_port, "/metrics").find("sluice_buffer_events") != std::string::npos);
      SleepMs(100);
    }
    CHECK(saw_down);
    CHECK(Num(st, "$.buffer.last_seq") > before);
    REQUIRE(proxy.Restore());
    REQUIRE(acked_at_least(Num(st, "$.buffer.last_seq")));
  }
  pusher.Stop();

  // Everything committed so far reaches the broker, in order, once or
  // (after a reconnect) again.
  REQUIRE(s.Status(&st));
  const uint64_t last = static_cast<uint64_t>(Num(st, "$.buffer.last_seq"));
  REQUIRE(last > 0);
  SeqTracker tracker(kStatusTopic);
  const bool covered = tracker.WaitCovers(sub, 1, last, 60000000);
  const auto missing = tracker.Missing(1, last);
  INFO(missing.size() << " of seqs 1.." << last << " never arrived, first "
                      << (missing.empty() ? 0 : missing[0]));
  REQUIRE(covered);
  CHECK(tracker.out_of_order() == 0);
  CHECK(tracker.reused() == 0);
  CHECK(tracker.bad_payloads() == 0);
  CHECK(proxy.accepted() >= 3);
  // The rule that always fires sent alerts; a clean stop.
  const auto messages = sub.Messages();
  size_t alerts = 0;
  for (const auto& m : messages) alerts += m.topic.find("/alerts/") != std::string::npos;
  CHECK(alerts > 0);
  const int status = s.d.Terminate();
  CHECK(ExitStatus(status) == 0);
  CHECK(s.d.Log().find("ThreadSanitizer") == std::string::npos);
}

}  // namespace
}  // namespace testing
}  // namespace sluice
