// sluiced: flags, config, signal flags, and the daemon's ordered start/stop.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "agent/config/config.h"
#include "agent/daemon/daemon.h"
#include "agent/daemon/notify.h"
#include "common/build_options.h"
#include "common/clock.h"
#include "common/log.h"

namespace {

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_reload = 0;
int g_wake_fd = -1;

// Only sets flags and wakes the main loop (async-signal-safe).
void OnSignal(int sig) {
  int saved = errno;
  if (sig == SIGHUP) g_reload = 1;
  else g_stop = 1;
  if (g_wake_fd >= 0) {
    char c = 1;
    ssize_t r = write(g_wake_fd, &c, 1);
    (void)r;
  }
  errno = saved;
}

void Usage(FILE* out) {
  std::fprintf(out,
               "usage: sluiced --config FILE [--check]\n"
               "  --config FILE  the TOML configuration file\n"
               "  --check        validate the config (and its drivers and rule files),\n"
               "                 print \"ok\" or the errors, exit 0 or 2\n"
               "  --version      print the version and the drivers and transports built in\n"
               "  --drivers      print the drivers built in, one a line\n");
}

// "sluiced VERSION", then what this build holds and what it left out.
void PrintVersion() {
  std::printf("sluiced %s\n", SLUICE_VERSION);
  const sluice::DriverRegistry& drivers = sluice::DriverRegistry::Builtin();
  std::string line = "drivers:";
  for (const std::string& name : drivers.Names()) line += " " + name;
  std::printf("%s\n", line.c_str());
  std::printf("transports: mosquitto%s\n", SLUICE_TRANSPORT_PAHO ? " paho" : "");
  std::string out;
  for (const auto& [name, option] : drivers.left_out()) out += " " + name + " (" + option + "=OFF)";
  if (!SLUICE_TRANSPORT_PAHO) out += " paho (SLUICE_TRANSPORT_PAHO=OFF)";
  if (!out.empty()) std::printf("left out:%s\n", out.c_str());
}

bool InstallSignals(int wake_fd) {
  g_wake_fd = wake_fd;
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    if (sigaction(sig, &sa, nullptr) != 0) return false;
  }
  signal(SIGPIPE, SIG_IGN);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--check") {
      check = true;
    } else if (a == "--version") {
      PrintVersion();
      return 0;
    } else if (a == "--drivers") {
      for (const std::string& name : sluice::DriverRegistry::Builtin().Names()) {
        std::printf("%s\n", name.c_str());
      }
      return 0;
    } else if (a == "--help" || a == "-h") {
      Usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "sluiced: unknown argument \"%s\"\n", a.c_str());
      Usage(stderr);
      return 2;
    }
  }
  if (config_path.empty()) {
    Usage(stderr);
    return 2;
  }

  auto config = sluice::LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().message().c_str());
    return 2;
  }
  sluice::LogLevel level = sluice::LogLevel::kInfo;
  sluice::ParseLogLevel(config->agent.log_level, &level);
  sluice::SetLogLevel(level);

  auto daemon = sluice::Daemon::Create(std::move(*config), sluice::SystemClock::Get());
  if (!daemon.ok()) {
    std::fprintf(stderr, "%s\n", daemon.status().message().c_str());
    return 2;
  }
  if (check) {
    std::printf("ok\n");
    return 0;
  }

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0 || !InstallSignals(pipefd[1])) {
    std::fprintf(stderr, "sluiced: cannot set up signal handling: %s\n", std::strerror(errno));
    return 1;
  }

  sluice::Notifier notifier;
  sluice::Status st = (*daemon)->Start();
  if (!st.ok()) {
    sluice::LogError("agent", "cannot start: " + st.message());
    (*daemon)->Shutdown();
    return 1;
  }
  notifier.Send("READY=1\nSTATUS=serving");
  sluice::LogInfo("agent", "serving");

  sluice::Clock& clock = sluice::SystemClock::Get();
  int64_t wd = notifier.watchdog_interval_us();
  int64_t next_watchdog = clock.NowMonotonicUs();
  while (!g_stop) {
    int64_t now = clock.NowMonotonicUs();
    if (wd > 0 && now >= next_watchdog) {
      // Only a live pipeline earns a watchdog ping.
      if ((*daemon)->Healthy()) notifier.Send("WATCHDOG=1");
      next_watchdog = now + wd;
    }
    int timeout_ms = 1000;
    if (wd > 0) timeout_ms = static_cast<int>(std::max<int64_t>(1, (next_watchdog - now) / 1000));
    struct pollfd pfd = {pipefd[0], POLLIN, 0};
    if (poll(&pfd, 1, std::min(timeout_ms, 1000)) > 0) {
      char buf[64];
      while (read(pipefd[0], buf, sizeof buf) > 0) {
      }
    }
    if (g_reload) {
      g_reload = 0;
      notifier.Send("RELOADING=1");
      (*daemon)->Reload();
      notifier.Send("READY=1");
    }
    (*daemon)->Tick();
  }
  notifier.Send("STOPPING=1");
  sluice::LogInfo("agent", "stopping");
  (*daemon)->Shutdown();
  sluice::LogInfo("agent", "stopped");
  if ((*daemon)->abandoned_reads()) {
    // Blocked reads still run inside the drivers: destroying them would
    // wait forever (or free memory in use). Everything is committed.
    std::fflush(nullptr);
    ::_exit(0);
  }
  return 0;
}
