// One libmosquitto client (MQTT 3.1.1), shared by the uplink's mosquitto
// transport and the `mqtt` driver: the `struct mosquitto` with its setup
// (credentials, TLS, will, keepalive, callbacks), connecting and
// reconnecting, the network loop, and why a connection failed or ended.
//
// Threads: the thread in RunLoop() (the network thread) runs every listener
// callback. Connect() and RunLoop() are called by one thread at a time, never
// while RunLoop() runs elsewhere; Publish, Subscribe and Disconnect from any
// thread, or from a callback. LastError() anywhere. Destroy the client only
// once RunLoop() has returned.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/broker_address.h"
#include "common/status.h"

struct mosquitto;
struct mosquitto_message;

namespace sluice {

struct MosquittoTls {        // used when the broker address says TLS
  std::string ca_file;       // empty: the system's default trust store
  std::string cert_file;     // client certificate (PEM); with key_file
  std::string key_file;      // client key (PEM); with cert_file
  bool verify = true;        // verify the server certificate and host name
};

struct MosquittoWill {
  std::string topic;         // empty: no will
  std::string payload;
  int qos = 1;
  bool retain = true;
};

struct MosquittoOptions {
  BrokerAddress broker;      // broker.tls: TLS with `tls`
  std::string client_id;     // empty: one made up by libmosquitto (clean session)
  std::string username;      // empty with an empty password: none
  std::string password;      // empty: none; never logged
  MosquittoTls tls;
  int keepalive_s = 30;
  MosquittoWill will;
  bool clean_session = true;
  int send_maximum = 0;      // > 0: messages in flight at most (MOSQ_OPT_SEND_MAXIMUM)
  // true: Publish/Subscribe/Disconnect only queue and wake the network
  // thread (for callers on other threads: never blocks on the network).
  // false: called outside a callback, they write to the socket at once
  // (for a client whose every call is on the network thread).
  bool threaded = true;
};

struct MosquittoMessage {
  std::string_view topic;
  std::string_view payload;
  int qos = 0;
  bool retain = false;
};

// Callbacks on the network thread. Quick; must not call Connect() or
// RunLoop(), nor destroy the client.
class MosquittoListener {
 public:
  virtual ~MosquittoListener() = default;
  // CONNACK: 0 accepted, else the broker's refusal (LastError() says it).
  virtual void OnConnect(int connack_rc) { (void)connack_rc; }
  // The connection ended: rc 0 after Disconnect(), else a loss.
  virtual void OnDisconnect(int rc) { (void)rc; }
  // Message `mid` is done: PUBACK for QoS 1, written to the socket for QoS 0.
  virtual void OnPublish(int mid) { (void)mid; }
  // SUBACK for subscription `mid`; granted_qos 128: refused.
  virtual void OnSubscribe(int mid, int granted_qos) { (void)mid, (void)granted_qos; }
  virtual void OnMessage(const MosquittoMessage& message) { (void)message; }
};

class MosquittoClient {
 public:
  // Initialises libmosquitto (once per process), creates and configures a
  // client; no network activity. InvalidArgument for options libmosquitto
  // refuses ("tls: ...", "will: ...", "username/password: ..."); `listener`
  // must outlive the client.
  static StatusOr<std::unique_ptr<MosquittoClient>> Create(const MosquittoOptions& options,
                                                           MosquittoListener* listener);
  // Frees the client and whatever it still queued; no callback after this.
  ~MosquittoClient();
  MosquittoClient(const MosquittoClient&) = delete;
  MosquittoClient& operator=(const MosquittoClient&) = delete;

  // Starts a connection (the first call) or a reconnection of the same
  // client (later calls) without waiting for CONNACK, which RunLoop()
  // delivers. Forgets the previous attempt's LastError(). An error (the
  // socket's or TLS's reason) means RunLoop() has nothing to run.
  Status Connect();
  // Runs the network loop (poll_ms per round) until the connection ends:
  // then Unavailable(LastError()); or until `stop`: then Ok.
  Status RunLoop(const std::atomic<bool>& stop, int poll_ms);
  // Queues one message; *mid (may be null) is its id for OnPublish. Errors:
  // InvalidArgument for a bad topic or payload, Unavailable otherwise, with
  // libmosquitto's or the system's reason.
  Status Publish(const std::string& topic, const void* payload, size_t size, int qos,
                 bool retain, int* mid);
  // Queues one SUBSCRIBE; errors as for Publish.
  Status Subscribe(const std::string& topic_filter, int qos, int* mid);
  // Queues DISCONNECT (the broker drops the will); the loop then ends.
  // Harmless when not connected.
  void Disconnect();

  // Why the current attempt failed or the connection ended (the first
  // reason wins), followed by libmosquitto's error log lines in
  // parentheses (OpenSSL's words for TLS); "" while nothing failed.
  std::string LastError() const;
  // libmosquitto's error log lines of the current attempt ("" if none).
  std::string LibraryErrors() const;
  // Microseconds since the broker last sent anything on this connection
  // (any packet, a PINGRESP too: TCP's last data received, sampled by
  // RunLoop() every ~50 ms), or -1 before RunLoop() sampled it or where the
  // system cannot tell. Any thread.
  int64_t InboundSilenceUs() const;

  // True if `filter` is a valid subscription topic filter.
  static bool ValidTopicFilter(const std::string& filter);

 private:
  enum class Phase { kIdle, kConnecting, kConnected, kEnded };

  MosquittoClient(const MosquittoOptions& options, MosquittoListener* listener);
  Status Configure();
  Status ConfigureTls();
  void NoteFailureLocked(int rc, int err);
  // Network thread: records when the socket last received data.
  void SampleInbound();
  std::string LastErrorLocked() const;

  static void OnConnectThunk(mosquitto*, void* self, int rc);
  static void OnDisconnectThunk(mosquitto*, void* self, int rc);
  static void OnPublishThunk(mosquitto*, void* self, int mid);
  static void OnSubscribeThunk(mosquitto*, void* self, int mid, int count, const int* granted);
  static void OnMessageThunk(mosquitto*, void* self, const mosquitto_message* msg);
  static void OnLogThunk(mosquitto*, void* self, int level, const char* msg);

  const MosquittoOptions options_;
  MosquittoListener* const listener_;
  mosquitto* mosq_ = nullptr;
  bool connect_called_ = false;  // Connect()'s thread: connect, then reconnect
  int64_t sampled_at_ns_ = 0;    // network thread: last SampleInbound()
  // steady_clock ns of the last data received (0: not known).
  std::atomic<int64_t> inbound_at_ns_{0};

  mutable std::mutex mu_;
  Phase phase_ = Phase::kIdle;
  int disconnect_rc_ = 0;      // first failing rc of this attempt (0: none)
  int disconnect_errno_ = 0;   // errno that came with a MOSQ_ERR_ERRNO end (0: none)
  std::string reason_;         // why this attempt failed or ended ("": not known yet)
  std::string errors_;         // libmosquitto's error log lines this attempt
};

}  // namespace sluice
