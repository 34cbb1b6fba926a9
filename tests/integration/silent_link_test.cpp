// A real sluiced whose link to the broker goes silent: a blackhole both
// ways (tests/support/tcp_proxy.h), no FIN, no RST. sluiced must report the
// loss within 1.5 x keepalive of the moment the link went silent, say why in
// `sluice status` (text and --json), and once the link is back deliver every
// committed seq, first arrivals in seq order. Both MQTT clients, each with
// the smallest keepalive it takes (libmosquitto 5 s, Paho 2 s).
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "tests/integration/it_support.h"
#include "tests/support/mosquitto_broker.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace testing {
namespace {

const std::string kStatusTopic = std::string("sluice/") + kAgent + "/status";
// The uplink looks every 50 ms, libmosquitto's socket is sampled every
// 50-150 ms, this test reads the log every 20 ms, and the last ack came up
// to one reading (5 ms) before the link went silent.
constexpr int64_t kSlackUs = 300000;

TEST_CASE("silent link: sluiced reports it within 1.5 x keepalive, says why, loses nothing",
          "[integration]") {
  const std::string client = GENERATE("mosquitto", "paho");
  INFO("client = " << client);
  const int keepalive_s = client == "paho" ? 2 : 5;
  const int64_t limit_us = keepalive_s * 1500000ll;  // 1.5 x keepalive
  TempDir dir;
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  Subscriber sub(broker.url(), "sluice/#");
  REQUIRE(sub.Start(&err));
  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());

  ConfigSpec spec;
  spec.data_dir = dir.Join("data");
  spec.control_socket = dir.Join("control.sock");
  const std::string sock = dir.Join("push.sock");
  spec.sensors = {PushSensor("ingest", "unix://" + sock)};
  spec.upstream_url = "mqtt://127.0.0.1:" + std::to_string(proxy.port());
  // [[upstream]] is the config's last table: these lines belong to it.
  REQUIRE(WriteFile(dir.Join("sluiced.toml"),
                    spec.ToToml() + "client = \"" + client + "\"\nkeepalive = \"" +
                        std::to_string(keepalive_s) + "s\"\nconnect_timeout = \"2s\"\n"));
  Sluiced d(dir.Join("sluiced.toml"), dir.Join("sluiced.log"));
  if (!d.Start(&err)) FAIL(err << "\n" << d.Log());
  Pusher pusher(sock, "silent.s", 200);
  pusher.Start();
  SeqTracker tr(kStatusTopic);
  REQUIRE(sub.WaitFor([&](const std::vector<ReceivedMessage>& m) {
    tr.Feed(m);
    return tr.Distinct() >= 100;
  }, 30000000));

  const int64_t silent_at = MonoNowUs();
  proxy.Silence(SilenceMode::kBoth);
  const std::string kReason = "no reply from broker for ";
  const bool reported = WaitUntil([&] { return d.Log().find(kReason) != std::string::npos; },
                                  4 * limit_us, 20000);
  const int64_t detected_us = MonoNowUs() - silent_at;
  INFO(d.Log());
  REQUIRE(reported);
  WARN("silent link (" << client << "): reported after " << detected_us / 1000
                       << " ms, keepalive " << keepalive_s << " s");
  CHECK(detected_us <= limit_us + kSlackUs);

  const std::string cli = BinDir() + "/sluice";
  RunResult json = RunProgram(cli, {"--socket", spec.control_socket, "status", "--json"},
                              dir.path());
  CHECK(json.out.find("\"last_disconnect_reason\":\"" + kReason) != std::string::npos);
  RunResult text = RunProgram(cli, {"--socket", spec.control_socket, "status"}, dir.path());
  CHECK(text.out.find("last disconnect: " + kReason) != std::string::npos);

  SleepMs(500);  // ingest goes on; redials meet the silence
  REQUIRE(proxy.Restore());
  SleepMs(800);
  pusher.Stop();
  DbSnapshot db = ReadBufferDb(spec.data_dir);
  for (int i = 0; i < 50; ++i) {  // until the ring stops growing
    SleepMs(200);
    DbSnapshot now = ReadBufferDb(spec.data_dir);
    if (now.ok && db.ok && now.max_seq == db.max_seq) break;
    db = now;
  }
  REQUIRE(db.ok);
  const bool covered = tr.WaitCovers(sub, 1, db.max_seq, 30000000);
  INFO("missing " << tr.Missing(1, db.max_seq).size() << " of " << db.max_seq);
  REQUIRE(covered);
  CHECK(tr.out_of_order() == 0);
  CHECK(tr.bad_payloads() == 0);
  const int status = d.Terminate();
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

}  // namespace
}  // namespace testing
}  // namespace sluice
