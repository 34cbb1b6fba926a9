// Helpers for the live CLI integration tests: a sluiced with a simulated
// sensor, a push listener, two rules, one upstream with a password and an
// HTTP /metrics listener; the `sluice` binary; small socket clients.
// Loopback only; every wait is bounded. Not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/json_parse.h"
#include "tests/integration/it_support.h"

namespace sluice {
namespace testing {

struct LiveOptions {
  std::string sensor_interval = "50ms";  // "" : no simulated sensor
  std::string password_mode = "0640";    // the password file's mode
  int max_inflight = 64;
  int max_events = 100000;
  std::string extra_sensors;  // raw [[sensor]] blocks added to the config
};

struct LiveSetup {
  explicit LiveSetup(const std::string& upstream_url, LiveOptions options = {});
  TempDir dir;
  std::string config, sock, push_sock, rules_file, password_file;
  int metrics_port = 0;
  Sluiced d;
  // `sluice --socket sock status --json`, parsed. False if it failed.
  bool Status(JsonValue* out);
};

// Runs build/bin/sluice with `args` (bounded: 20 s).
RunResult RunCli(const std::vector<std::string>& args, const std::string& scratch_dir,
                 const std::vector<std::string>& env = {});
std::string SluicePath();
// The exit code, or -1000 - status when it did not exit normally.
int ExitStatus(int wait_status);
// One HTTP/1.0 GET on 127.0.0.1:port; the whole response ("" on failure).
std::string HttpGet(int port, const std::string& path);
// Reads one line (without the newline) from fd, up to 5 s.
std::string ReadLine(int fd);
// True if `text` holds none of the test password.
bool secrets_absent(const std::string& text);

}  // namespace testing
}  // namespace sluice
