// sluice-bench: benchmark figures as JSON lines on stdout (one object per
// measured figure) and a human summary table on stderr. See README.
//
//   sluice-bench ingest [--events N] [--runs K]
//   sluice-bench drain  [--events N] [--runs K] [--bridge-events M]
//                       [--bridge-autosave S] [--max-inflight W] [--batch B]
//   sluice-bench rules  [--events N]   (readings through the rules engine)
//   sluice-bench sensors (simulated sensors through the Scheduler: CPU/s, jitter)
//   sluice-bench wear   [--seconds S] [--events N]  (bytes written and at rest
//                       per reading, peak memory; beside raw SQLite)
//   sluice-bench all    [--quick] [...]
//   --quick: tiny N (the CTest smoke test); --keep: keep temp dirs.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/bench.h"
#include "bench/mqtt.h"
#include "bench/util.h"

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: sluice-bench ingest|drain|rules|sensors|wear|all [--events N] [--runs K]\n"
               "         [--seconds S] [--quick]\n"
               "         [--bridge-events M] [--bridge-autosave S] [--max-inflight W]\n"
               "         [--batch B] [--sub-qos 0|1] [--keep]\n");
  return 2;
}

bool ParseNumber(const char* s, uint64_t* out) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0') return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice::bench;
  if (argc < 2) return Usage();
  const std::string cmd = argv[1];
  if (cmd == "_publish") return PublishWorkerMain(argc, argv);
  if (cmd != "ingest" && cmd != "drain" && cmd != "rules" && cmd != "sensors" && cmd != "wear" &&
      cmd != "all") return Usage();
  Args args;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    uint64_t v = 0;
    auto value = [&]() { return i + 1 < argc && ParseNumber(argv[++i], &v); };
    if (a == "--quick") {
      args.quick = true;
    } else if (a == "--keep") {
      args.keep = true;
    } else if (a == "--events" && value() && v > 0) {
      args.events = v;
    } else if (a == "--runs" && value() && v > 0 && v < 1000) {
      args.runs = static_cast<int>(v);
    } else if (a == "--bridge-events" && value() && v > 0) {
      args.bridge_events = v;
    } else if (a == "--bridge-autosave" && value() && v < 100000) {
      args.bridge_autosave = static_cast<int>(v);
    } else if (a == "--max-inflight" && value() && v > 0 && v <= 65535) {
      args.max_inflight = v;
    } else if (a == "--sub-qos" && value() && v <= 1) {
      args.sub_qos = static_cast<int>(v);
    } else if (a == "--seconds" && value() && v > 0 && v <= 86400) {
      args.seconds = v;
    } else if (a == "--batch" && value() && v > 0 && v <= 100000) {
      args.batch = v;
    } else {
      std::fprintf(stderr, "sluice-bench: bad argument '%s'\n", a.c_str());
      return Usage();
    }
  }
  int rc = 0;
  if (cmd == "ingest" || cmd == "all") rc |= RunIngest(args);
  if (cmd == "drain" || cmd == "all") rc |= RunDrain(args);
  if (cmd == "rules" || cmd == "all") rc |= RunRules(args);
  if (cmd == "sensors" || cmd == "all") rc |= RunSensors(args);
  if (cmd == "wear" || cmd == "all") rc |= RunWear(args);
  PrintSummary();
  return rc;
}
