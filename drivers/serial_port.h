// A line-oriented serial device (a tty), read by one background thread and
// shared by every sensor naming the same device path. Used by the `serial`
// driver.
//
// - Opened O_RDWR|O_NOCTTY|O_NONBLOCK|O_CLOEXEC, put in raw mode (termios:
//   no echo, no line editing, no flow control, CLOCAL|CREAD) with the
//   configured baud, parity, data and stop bits; input queued before the
//   open is flushed and the first line after each open is discarded (it may
//   be the tail of a line the device was sending).
// - Lines end at '\n' (a trailing '\r' is dropped); empty lines are skipped;
//   a line longer than kMaxSerialLine is dropped whole (counted).
// - Unplug/replug: a hang-up, EOF or read error closes the device; the thread
//   then reopens it by path with capped, jittered backoff (100 ms .. 5 s)
//   until it is back (a USB adapter coming back, a symlink re-pointed).
//
// Thread-safe. Listeners are called on the reader thread with the port's
// lock held (see Listener).
#pragma once

#include <termios.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "drivers/shared_devices.h"

namespace sluice {

constexpr size_t kMaxSerialLine = 4096;

struct SerialSettings {
  std::string device;
  int baud = 9600;
  char parity = 'N';  // 'N', 'E', 'O'
  int data_bits = 8;  // 5..8
  int stop_bits = 1;  // 1, 2

  bool SameLine(const SerialSettings& o) const {
    return baud == o.baud && parity == o.parity && data_bits == o.data_bits &&
           stop_bits == o.stop_bits;
  }
  // "9600 8N1".
  std::string Describe() const;
};

// The termios speed for a standard rate (50 .. 4000000); false otherwise.
bool BaudToSpeed(int baud, speed_t* out);

// Raw mode with `s`'s speed and character format (see above) in *t.
void ApplySerialSettings(const SerialSettings& s, termios* t);

// Opens and configures `s.device` (see above). Returns the descriptor.
StatusOr<int> OpenSerialDevice(const SerialSettings& s);

struct SerialPortStats {
  bool connected = false;
  uint64_t opens = 0;        // successful opens (1 + reopens)
  uint64_t lines = 0;        // complete lines delivered to listeners
  uint64_t overlong = 0;     // lines dropped for exceeding kMaxSerialLine
  uint64_t disconnects = 0;  // hang-ups and read errors
  std::string last_error;    // why it is not connected ("" when connected)
};

class SerialPort {
 public:
  // Receives every line. Called on the reader thread with the port's mutex
  // held: must be quick and must not call back into the port.
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void OnLine(std::string_view line) = 0;
  };

  // The port in `devices` for `s.device`, shared by every holder. Fails if
  // the device is already open with other line settings (naming the sensor
  // that opened it).
  static StatusOr<std::shared_ptr<SerialPort>> For(SharedDevices& devices,
                                                   const SerialSettings& s,
                                                   const std::string& sensor);

  SerialPort(SerialSettings settings, std::string first_sensor);
  ~SerialPort();  // stops and joins the reader thread
  SerialPort(const SerialPort&) = delete;
  SerialPort& operator=(const SerialPort&) = delete;

  void AddListener(Listener* l);
  // After this returns, `l` is never called again.
  void RemoveListener(Listener* l);

  // Starts the reader thread (first call only; later calls are no-ops).
  void EnsureStarted();

  // Runs `fn` under the port's mutex, then (if it returns false) waits on
  // the port's condition until `fn` returns true or `timeout_us` passes.
  // The condition is notified on every line and every connection change.
  // Returns the last result of `fn`.
  template <typename Fn>
  bool WaitUntil(Fn fn, int64_t timeout_us);

  // Connection state under the same mutex (for use inside WaitUntil's fn).
  bool connected_locked() const { return connected_; }
  bool opened_once_locked() const { return opens_ > 0 || !last_error_.empty(); }
  const std::string& last_error_locked() const { return last_error_; }

  const SerialSettings& settings() const { return settings_; }
  const std::string& first_sensor() const { return first_sensor_; }
  SerialPortStats stats() const;

 private:
  void Run();
  // Returns the number of lines delivered.
  size_t Feed(const char* data, size_t n);
  void SetDisconnected(const std::string& why);
  // Sleeps up to `us` on the wake descriptor; false once stopping.
  bool Sleep(int64_t us);

  const SerialSettings settings_;
  const std::string first_sensor_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Listener*> listeners_;
  bool connected_ = false;
  uint64_t opens_ = 0;
  uint64_t lines_ = 0;
  uint64_t overlong_ = 0;
  uint64_t disconnects_ = 0;
  std::string last_error_;

  // Reader thread only.
  int fd_ = -1;
  std::string partial_;
  bool discard_line_ = false;  // the first line after an open, or an overlong one

  std::once_flag start_once_;
  std::thread thread_;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
};

template <typename Fn>
bool SerialPort::WaitUntil(Fn fn, int64_t timeout_us) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::microseconds(timeout_us), fn);
}

}  // namespace sluice
