#include "bench/broker.h"

#include <unistd.h>

#include <utility>

namespace sluice {
namespace bench {

std::string BaseBrokerConfig() {
  std::string c;
  c += "allow_anonymous true\n";
  // The default (1000) silently drops QoS 1 messages queued for a client
  // that falls behind (a subscriber, or a bridge's backlog): every broker of
  // the bench is unlimited, so a count below N is a real loss.
  c += "max_queued_messages 0\n";
  c += "log_type error\nlog_type warning\nlog_type notice\n";
  // Started as root, mosquitto drops to user `mosquitto`, which could not
  // write its log and persistence into our private temp dirs.
  if (::geteuid() == 0) c += "user root\n";
  return c;
}

Broker::Broker(std::string name, std::string dir, int port)
    : name_(std::move(name)), dir_(std::move(dir)), port_(port) {}

Broker::~Broker() { Stop(); }

bool Broker::Start(const std::string& extra, std::string* error) {
  if (child_.running()) return true;
  const bool fixed = port_ > 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (!fixed) port_ = FreeLoopbackPort();
    std::string conf = "listener " + std::to_string(port_) + " 127.0.0.1\n";
    conf += BaseBrokerConfig();
    conf += "log_dest file " + dir_ + "/mosquitto.log\n";
    conf += extra;
    if (!WriteFile(dir_ + "/mosquitto.conf", conf)) {
      *error = "cannot write " + dir_ + "/mosquitto.conf";
      return false;
    }
    if (!child_.Start({"/usr/sbin/mosquitto", "-c", dir_ + "/mosquitto.conf"},
                      dir_ + "/mosquitto.out", error)) {
      return false;
    }
    bool up = WaitUntil([&] { return !child_.Wait(0) && PortAcceptsConnections(port_); },
                        10000000, 2000);
    if (up) return true;
    child_.Terminate(1000000);
    if (fixed) break;
  }
  *error = "mosquitto " + name_ + " did not start: " + ReadFile(dir_ + "/mosquitto.out") +
           log();
  return false;
}

void Broker::Stop() {
  if (child_.running()) child_.Terminate(20000000);
}

}  // namespace bench
}  // namespace sluice
