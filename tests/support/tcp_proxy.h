// An in-process loopback TCP forwarder: 127.0.0.1:port() -> 127.0.0.1:target.
// Simulates the link between an uplink and its broker failing:
// - Cut() closes every connection and refuses new ones (the listening socket
//   is closed, so connects get ECONNREFUSED): a link that fails cleanly.
// - Silence(mode) stops forwarding without closing anything (a blackhole, a
//   half-open link, a stall in the middle of a packet): neither side gets a
//   FIN or RST; what is not forwarded is read and thrown away.
// - Restore() brings the link back.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice {
namespace testing {

// How a silenced link fails. "client" is the side that connects to the
// proxy (the uplink), "broker" the target.
enum class SilenceMode {
  kNone,            // forwarding (the default)
  kBoth,            // nothing passes either way
  kClientToBroker,  // the broker hears nothing; the client still hears the broker
  kBrokerToClient,  // the client hears nothing; the broker still hears the client
  kStallMidPacket,  // each direction passes the first half of its next MQTT
                    // packet (at least its first byte), then nothing
};

// Tracks MQTT packet boundaries in one direction of a byte stream.
class MqttFramer {
 public:
  // Consumes n bytes of the stream.
  void Feed(const char* data, size_t n);
  // True between packets (nothing of the next packet seen yet).
  bool AtBoundary() const { return state_ == State::kHeader; }
  // At a boundary: how many of `data`'s n bytes to forward so that the
  // receiver holds part of the next packet but not all of it (>= 1 when
  // n >= 1, always less than the packet).
  static size_t HalfOfFirstPacket(const char* data, size_t n);

 private:
  enum class State { kHeader, kLength, kBody };
  State state_ = State::kHeader;
  uint32_t length_ = 0;      // remaining length being decoded, then body left
  uint32_t multiplier_ = 1;
};

class TcpProxy {
 public:
  explicit TcpProxy(int target_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  // Listens on a free loopback port. Returns false on failure.
  bool Start();
  // Closes all connections and the listener; returns once they are closed.
  void Cut();
  // Applies `mode` to every open connection and to every connection
  // accepted from now on (a new connection's CONNECT is lost the same way),
  // until Restore() or Cut(). Closes nothing: an end of stream from either
  // side is not passed on either.
  void Silence(SilenceMode mode);
  // After Cut(): listens again on the same port (false if the port is
  // gone). After Silence(): shuts the silenced connections down (their
  // streams lost bytes; their peers usually gave up on them already) and
  // forwards new connections normally again.
  bool Restore();

  int port() const { return port_; }
  // "tcp://127.0.0.1:PORT".
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  // Connections accepted so far.
  int accepted() const { return accepted_.load(); }
  // Bytes thrown away by silenced connections so far.
  uint64_t dropped_bytes() const { return dropped_bytes_.load(); }
  // From now on, every accepted connection is cut `us` after it was
  // accepted (0: never), like a broker that accepts and then drops every
  // client. Keep it short: Cut() waits for pending cuts.
  void set_drop_after_us(int64_t us) { drop_after_us_ = us; }

 private:
  // One direction of a connection. mode is read by the pump on each chunk.
  struct Direction {
    int from = -1;
    int to = -1;
    bool is_up = false;  // client -> broker
    std::atomic<SilenceMode> mode{SilenceMode::kNone};
    MqttFramer framer;     // pump thread only
    bool stalled = false;  // pump thread only: the half packet went out
    std::thread pump;
  };
  struct Conn {
    int client_fd = -1;
    int server_fd = -1;
    Direction up;    // client -> broker
    Direction down;  // broker -> client
    std::thread dropper;  // set_drop_after_us
  };

  bool Listen();
  void AcceptLoop(int listen_fd);
  void Pump(Direction* d);
  // Sets both directions of c for a link in `mode`. REQUIRES: mu_ held.
  static void ApplyLocked(Conn* c, SilenceMode mode);
  // Shuts down and joins everything; REQUIRES: mu_ not held.
  void CloseAll();

  const int target_port_;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<uint64_t> dropped_bytes_{0};
  std::atomic<int64_t> drop_after_us_{0};
  std::mutex mu_;
  int listen_fd_ = -1;
  std::thread accept_thread_;
  std::vector<std::unique_ptr<Conn>> conns_;
  bool cut_ = false;
  SilenceMode mode_ = SilenceMode::kNone;  // for connections accepted now
};

}  // namespace testing
}  // namespace sluice
