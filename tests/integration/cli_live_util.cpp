#include "tests/integration/cli_live_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

namespace sluice {
namespace testing {
namespace {
constexpr const char* kPassword = "pw-S3CRET-xyz";
}  // namespace

LiveSetup::LiveSetup(const std::string& upstream_url, LiveOptions o)
    : config(dir.Join("sluice.toml")),
      sock(dir.Join("run/control.sock")),
      push_sock(dir.Join("push.sock")),
      rules_file(dir.Join("rules.d/main.toml")),
      password_file(dir.Join("cloud.pass")),
      metrics_port(FreeLoopbackPort()),
      d(dir.Join("sluice.toml"), dir.Join("sluiced.log")) {
  REQUIRE(::mkdir(dir.Join("rules.d").c_str(), 0755) == 0);
  REQUIRE(WriteFile(rules_file,
                    "[[rule]]\nname = \"always\"\nwhen = \"avg(boiler.temp, 1s) > -1000\"\n"
                    "severity = \"critical\"\nmessage = \"at {value}\"\n\n"
                    "[[rule]]\nname = \"never\"\nwhen = \"avg(boiler.temp, 1s) > 1000\"\n"));
  REQUIRE(WriteFile(password_file, kPassword));
  REQUIRE(::chmod(password_file.c_str(),
                  static_cast<mode_t>(std::stoi(o.password_mode, nullptr, 8))) == 0);
  std::string t =
      "[agent]\nid = \"" + std::string(kAgent) + "\"\ndata_dir = \"" + dir.Join("data") +
      "\"\ncontrol_socket = \"" + sock +
      "\"\nmetrics_listen = \"127.0.0.1:" + std::to_string(metrics_port) +
      "\"\nshutdown_grace = \"3s\"\n\n[buffer]\nmax_events = " + std::to_string(o.max_events) +
      "\nmax_bytes = \"64MiB\"\ndurability = \"normal\"\n\n";
  if (!o.sensor_interval.empty()) t += SimulatedSensor("boiler.temp", o.sensor_interval, "C");
  t += PushSensor("ingest", "unix://" + push_sock);
  t += o.extra_sensors;
  t += "\n[rules]\nfiles = [\"" + dir.Join("rules.d/*.toml") + "\"]\n\n";
  t += "[[upstream]]\nname = \"" + std::string(kUpstream) + "\"\nurl = \"" + upstream_url +
       "\"\nusername = \"gw\"\npassword_file = \"" + password_file +
       "\"\nmax_inflight = " + std::to_string(o.max_inflight) +
       "\nreconnect_min = \"50ms\"\nreconnect_max = \"300ms\"\n";
  REQUIRE(WriteFile(config, t));
}

bool LiveSetup::Status(JsonValue* out) {
  RunResult r = RunCli({"--socket", sock, "status", "--json"}, dir.path());
  if (ExitStatus(r.status) != 0) return false;
  JsonLimits limits;
  limits.max_bytes = 64 << 20;
  auto v = ParseJson(r.out, limits);
  if (!v.ok()) return false;
  *out = std::move(*v);
  return true;
}

std::string SluicePath() { return BinDir() + "/sluice"; }

RunResult RunCli(const std::vector<std::string>& args, const std::string& scratch_dir,
                 const std::vector<std::string>& env) {
  return RunProgram(SluicePath(), args, scratch_dir, 20000000, env);
}

int ExitStatus(int status) {
  return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1000 - status;
}

std::string HttpGet(int port, const std::string& path) {
  int fd = ConnectTcp(port);
  if (fd < 0) return "";
  SendAll(fd, "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  std::string in;
  char buf[65536];
  int64_t deadline = MonoNowUs() + 5000000;
  while (MonoNowUs() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return in;
}

std::string ReadLine(int fd) {
  std::string in;
  char c;
  int64_t deadline = MonoNowUs() + 5000000;
  while (MonoNowUs() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, &c, 1, 0);
    if (n <= 0 || c == '\n') break;
    in += c;
  }
  return in;
}

bool secrets_absent(const std::string& text) { return text.find(kPassword) == std::string::npos; }

}  // namespace testing
}  // namespace sluice
