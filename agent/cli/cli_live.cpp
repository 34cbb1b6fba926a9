// `sluice status [--json] [--watch]` and `sluice metrics`.
#include "agent/cli/cli_live.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "agent/cli/cli.h"
#include "agent/config/config.h"
#include "agent/control/control_client.h"

namespace sluice {
namespace {

constexpr const char* kDefaultSocket = "/run/sluice/control.sock";

volatile sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }

// The control socket: --socket, else the config's agent.control_socket
// (the default config if it exists), else the default path.
bool ResolveSocket(const LiveCli& cli, std::string* path) {
  if (!cli.socket_path.empty()) {
    *path = cli.socket_path;
    return true;
  }
  struct stat st;
  if (!cli.config_given && ::stat(cli::kDefaultConfig, &st) != 0) {
    *path = kDefaultSocket;
    return true;
  }
  auto cfg = LoadConfig(cli.config_given ? cli.config_path : cli::kDefaultConfig);
  if (!cfg.ok() && !cli.config_given) {
    // The default config unreadable for this user (0640) or mid-edit: the
    // daemon is still reachable at the default socket.
    std::fprintf(stderr, "sluice: warning: %s; trying %s\n", cfg.status().message().c_str(),
                 kDefaultSocket);
    *path = kDefaultSocket;
    return true;
  }
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
    return false;
  }
  *path = cfg->agent.control_socket;
  return true;
}

int Fail(const Status& s) {
  std::fprintf(stderr, "sluice: %s\n", s.message().c_str());
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

// One status: --json prints the daemon's response line as it came.
int StatusOnce(const std::string& socket, bool json, std::map<std::string, double>* peaks,
               bool progress, bool clear) {
  std::string raw;
  auto r = ControlCall(socket, "{\"cmd\":\"status\"}", 5000000, &raw);
  if (!r.ok()) return Fail(r.status());
  std::string text;
  if (json) {
    text = raw + "\n";
  } else {
    text = RenderStatus(*r, progress, peaks);
  }
  if (clear) text = "\x1b[H\x1b[2J" + text;
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int RunLiveCommand(const LiveCli& cli, const std::string& command, bool watch) {
  const bool status = command == "status";
  const bool json = cli.json;
  std::string socket;
  if (!ResolveSocket(cli, &socket)) return 2;

  if (!status) {
    auto r = ControlCall(socket, "{\"cmd\":\"metrics\"}");
    if (!r.ok()) return Fail(r.status());
    const JsonValue* text = r->Find("text");
    std::string body = text ? text->AsString() : std::string();
    std::fwrite(body.data(), 1, body.size(), stdout);
    return 0;
  }
  std::map<std::string, double> peaks;
  if (!watch) return StatusOnce(socket, json, &peaks, false, false);

  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // Paces a terminal refresh by real sleeps: the CLI has no injected Clock.
  auto next = std::chrono::steady_clock::now();
  bool first = true;
  while (!g_interrupted) {
    if (!first && !tty && !json) std::fputs("\n", stdout);
    int rc = StatusOnce(socket, json, &peaks, tty && !json, tty && !json);
    if (rc != 0) return rc;
    first = false;
    next += std::chrono::seconds(1);
    while (!g_interrupted && std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return 0;
}

}  // namespace sluice
