#include "tests/support/mosquitto_broker.h"

#include <signal.h>
#include <unistd.h>

#include <utility>

namespace sluice {
namespace testing {

MosquittoBroker::MosquittoBroker(Options options)
    : options_(std::move(options)), port_(options_.port > 0 ? options_.port : -1) {}

MosquittoBroker::~MosquittoBroker() { Stop(); }

std::string MosquittoBroker::url() const {
  return "tcp://127.0.0.1:" + std::to_string(port_);
}

std::string MosquittoBroker::log() const { return ReadFile(dir_.Join("mosquitto.log")); }

bool MosquittoBroker::Start(std::string* error) {
  if (process_.running()) return true;
  // A port picked by FreeLoopbackPort can be taken in between: retry with a
  // new one a few times, but only if no port was fixed by an earlier Start.
  const bool fixed_port = port_ > 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (!fixed_port) port_ = FreeLoopbackPort();
    std::string conf;
    conf += "listener " + std::to_string(port_) + " 127.0.0.1\n";
    conf += "allow_anonymous true\n";
    // Started as root, mosquitto drops to user `mosquitto`, which cannot
    // write its log or persistence file into our private temp dir.
    if (geteuid() == 0) conf += "user root\n";
    // The default (1000) silently drops QoS 1 messages for a subscriber that
    // falls behind: a loss test would then measure the broker, not Sluice.
    conf += "max_queued_messages 0\n";
    conf += "max_inflight_messages 0\n";
    if (options_.persistence) {
      conf += "persistence true\n";
      conf += "persistence_location " + dir_.path() + "/\n";
      conf += "autosave_interval 1\n";
    } else {
      conf += "persistence false\n";
    }
    conf += "log_dest file " + dir_.Join("mosquitto.log") + "\n";
    conf += "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n";
    conf += "connection_messages true\n";
    conf += options_.extra_config;
    if (!WriteFile(dir_.Join("mosquitto.conf"), conf)) {
      if (error) *error = "cannot write mosquitto.conf";
      return false;
    }
    Process::Options po;
    po.argv = {options_.binary, "-c", dir_.Join("mosquitto.conf")};
    po.stdout_path = dir_.Join("mosquitto.out");
    po.stderr_path = dir_.Join("mosquitto.out");
    std::string perr;
    if (!process_.Start(po, &perr)) {
      if (error) *error = perr;
      return false;
    }
    // Bounded: the broker accepts within a few hundred ms on this machine.
    bool up = WaitUntil([&] { return !process_.Wait(0) && PortAcceptsConnections(port_); },
                        10000000, 10000);
    if (up) return true;
    process_.Terminate(2000000);
    if (error) *error = "mosquitto did not come up: " + log() + ReadFile(dir_.Join("mosquitto.out"));
    if (fixed_port) break;
  }
  return false;
}

void MosquittoBroker::Stop() {
  if (!process_.running()) return;
  process_.Kill(SIGCONT);  // a paused broker would only die by SIGKILL
  process_.Terminate(5000000);
}

void MosquittoBroker::Pause() { process_.Kill(SIGSTOP); }

void MosquittoBroker::Resume() { process_.Kill(SIGCONT); }

void MosquittoBroker::Kill() {
  if (!process_.running()) return;
  process_.Kill(SIGKILL);
  process_.Wait(10000000);
}

bool MosquittoBroker::Restart(std::string* error) {
  Stop();
  return Start(error);
}

}  // namespace testing
}  // namespace sluice
