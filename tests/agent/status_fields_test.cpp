// Driver-reported status (Driver::Report) renders into the status JSON and
// the Prometheus text from one field table, with the names sluice always
// used.
#include <catch2/catch.hpp>

#include <string>

#include "agent/daemon/status.h"
#include "common/clock.h"
#include "drivers/push.h"

namespace sluice {
namespace {

TEST_CASE("a push listener's report renders as before in status and metrics") {
  auto address = ParseListenAddress("unix:///run/x.sock");
  REQUIRE(address.ok());
  FakeClock clock;
  PushDriver push("ingest", *address, clock);
  DriverStatus r = push.Report();
  REQUIRE(r.role == DriverStatus::Role::kListener);
  DaemonSnapshot snap;
  snap.listeners.push_back({"ingest", "push", r.fields});
  CHECK(StatusJson(snap).find(
            "\"listeners\":[{\"name\":\"ingest\",\"driver\":\"push\",\"listen\":\"unix:///run/"
            "x.sock\",\"lines_ok\":0,\"lines_bad\":0,\"dropped\":0,\"clients\":0,\"clients_"
            "total\":0,\"backpressure_waits\":0,\"idle_closed\":0,\"kernel_drops\":0}]") !=
        std::string::npos);
  std::string text = PrometheusText(snap);
  CHECK(text.find("# HELP sluice_push_lines_total Push lines received, by result.\n"
                  "# TYPE sluice_push_lines_total counter\n"
                  "sluice_push_lines_total{listener=\"ingest\",result=\"ok\"} 0\n"
                  "sluice_push_lines_total{listener=\"ingest\",result=\"rejected\"} 0\n") !=
        std::string::npos);
  CHECK(text.find("# TYPE sluice_push_dropped_total counter\n"
                  "sluice_push_dropped_total{listener=\"ingest\"} 0\n") != std::string::npos);
  CHECK(text.find("# TYPE sluice_push_kernel_drops_total counter\n"
                  "sluice_push_kernel_drops_total{listener=\"ingest\"} 0\n") != std::string::npos);
  CHECK(text.find("# TYPE sluice_push_clients gauge\n"
                  "sluice_push_clients{listener=\"ingest\"} 0\n") != std::string::npos);
}

TEST_CASE("a field added to a report shows in status and metrics, one family per name") {
  DaemonSnapshot snap;
  for (const char* name : {"a", "b"}) {
    snap.listeners.push_back(
        {name, "push",
         StatusFields()
             .Text("listen", "udp://127.0.0.1:9")
             .Counter("frames", 7, "sluice_test_frames_total", "Frames.")
             .Gauge("depth", 2.5, "sluice_test_depth", "Depth now.")
             .Counter("quiet", 3)
             .Take()});
  }
  std::string json = StatusJson(snap);
  CHECK(json.find("{\"name\":\"b\",\"driver\":\"push\",\"listen\":\"udp://127.0.0.1:9\","
                  "\"frames\":7,\"depth\":2.5,\"quiet\":3}") != std::string::npos);
  std::string text = PrometheusText(snap);
  CHECK(text.find("# HELP sluice_test_frames_total Frames.\n"
                  "# TYPE sluice_test_frames_total counter\n"
                  "sluice_test_frames_total{listener=\"a\"} 7\n"
                  "sluice_test_frames_total{listener=\"b\"} 7\n") != std::string::npos);
  CHECK(text.find("# TYPE sluice_test_depth gauge\nsluice_test_depth{listener=\"a\"} 2.5\n") !=
        std::string::npos);
  CHECK(text.find("quiet") == std::string::npos);
}

}  // namespace
}  // namespace sluice
