// libFuzzer target for the push line protocol (drivers/line_protocol.h) and
// the push driver's framing, on real sockets. Built with -DSLUICE_FUZZ=ON and
// clang (drivers/CMakeLists.txt).
//
// Each input is
//   1. split and parsed directly: an accepted line has a valid sensor name,
//      a finite value and a non-negative timestamp;
//   2. written to a real stream listener (unix socket in a temp dir) in two
//      writes split at an input-chosen point, the second sent only once the
//      listener has read the first (so lines cross reads), then a newline and
//      a sentinel line;
//   3. sent as one datagram to a real unixgram listener, then a sentinel.
// What the sink receives before each sentinel must be exactly the readings
// a model of the protocol expects (lines split at '\n', longer than
// kMaxLineBytes bad, blank skipped, the rest ParseLine), in order: no line
// lost, merged, split or invented, whatever the bytes. A sentinel that does
// not arrive within 10 s is a hang. (Inputs holding the sentinel's name skip
// steps 2 and 3.)
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <sanitizer/common_interface_defs.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "drivers/line_protocol.h"
#include "drivers/push.h"

using namespace sluice;

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  // Through the sanitizer's report stream: it stays open under
  // -close_fd_mask=2 (which silences the product's logs).
  __sanitizer_report_error_summary((std::string("fuzz_push: check failed: ") + what).c_str());
  __builtin_trap();
}

constexpr char kSentinel[] = "fuzz-sentinel";

// Collects readings; a sentinel reading (value = round number) ends a round.
class Sink final : public ReadingSink {
 public:
  Status Submit(Reading reading, int64_t) override {
    std::lock_guard<std::mutex> lk(mu_);
    got_.push_back(std::move(reading));
    cv_.notify_all();
    return Status::Ok();
  }
  // Waits for the sentinel of `round`; returns what came before it.
  std::vector<Reading> Take(double round) {
    std::unique_lock<std::mutex> lk(mu_);
    auto has = [&] {
      for (const Reading& r : got_) {
        if (r.sensor == kSentinel && r.value == round) return true;
      }
      return false;
    };
    Check(cv_.wait_for(lk, std::chrono::seconds(10), has), "sentinel arrived (no hang)");
    std::vector<Reading> out;
    for (Reading& r : got_) {
      if (r.sensor == kSentinel && r.value == round) break;
      out.push_back(std::move(r));
    }
    got_.clear();
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Reading> got_;
};

struct Listeners {
  std::string dir;
  Sink sink;
  std::unique_ptr<PushDriver> stream;
  std::unique_ptr<PushDriver> dgram;
  int dgram_fd = -1;

  Listeners() {
    SetLogLevel(LogLevel::kError);
    char tmpl[] = "/tmp/sluice-fuzz-push-XXXXXX";
    Check(mkdtemp(tmpl) != nullptr, "mkdtemp");
    dir = tmpl;
    ListenAddress s;
    s.kind = ListenAddress::Kind::kUnix;
    s.path = dir + "/s.sock";
    stream = std::make_unique<PushDriver>("s", s, SystemClock::Get());
    Check(stream->Start(sink).ok(), "stream listener starts");
    ListenAddress g;
    g.kind = ListenAddress::Kind::kUnixgram;
    g.path = dir + "/g.sock";
    dgram = std::make_unique<PushDriver>("g", g, SystemClock::Get());
    Check(dgram->Start(sink).ok(), "datagram listener starts");
    dgram_fd = Connect(SOCK_DGRAM, g.path);
    int big = 1 << 20;
    (void)setsockopt(dgram_fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  }
  ~Listeners() {
    ::close(dgram_fd);
    stream.reset();
    dgram.reset();
    ::rmdir(dir.c_str());
  }

  static int Connect(int type, const std::string& path) {
    int fd = ::socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    Check(fd >= 0, "socket");
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    Check(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0, "connect");
    return fd;
  }
};

void WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    Check(w > 0, "write to the stream listener");
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Waits until the listener has read everything sent on `fd` (SIOCOUTQ: bytes
// not yet taken by the peer), bounded.
void WaitDrained(int fd) {
  for (int i = 0; i < 10000; ++i) {
    int queued = 0;
    Check(::ioctl(fd, SIOCOUTQ, &queued) == 0, "SIOCOUTQ");
    if (queued == 0) return;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  Check(false, "the listener reads (no hang)");
}

// The readings `lines` should make, in order.
std::vector<ParsedLine> Expect(const std::vector<std::string_view>& lines) {
  std::vector<ParsedLine> out;
  for (std::string_view line : lines) {
    if (BlankLine(line)) continue;
    ParsedLine p;
    if (ParseLine(line, &p).ok()) out.push_back(p);
  }
  return out;
}

void Compare(const std::vector<ParsedLine>& want, const std::vector<Reading>& got) {
  Check(want.size() == got.size(), "as many readings as good lines");
  for (size_t i = 0; i < want.size(); ++i) {
    Check(want[i].sensor == got[i].sensor, "the line's sensor");
    Check(std::memcmp(&want[i].value, &got[i].value, sizeof(double)) == 0, "the line's value");
    if (want[i].has_ts) Check(want[i].ts_us == got[i].ts_us, "the line's timestamp");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Listeners* l = new Listeners();  // lives until exit: its threads run
  static double round = 0;
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  // 1. The parser alone.
  for (std::string_view line : SplitDatagram(in)) {
    Check(!BlankLine(line), "SplitDatagram leaves blank lines out");
    Check(line.find('\n') == std::string_view::npos, "a line holds no newline");
    ParsedLine p;
    if (!ParseLine(line, &p).ok()) continue;
    Check(ValidSensorName(p.sensor), "accepted sensor name is valid");
    Check(std::isfinite(p.value), "accepted value is finite");
    Check(!p.has_ts || p.ts_us >= 0, "accepted timestamp is non-negative");
  }

  // The sentinel ends a round: an input that holds one could end it early.
  if (in.find(kSentinel) != std::string_view::npos) return 0;

  // 2. A stream client: the model splits at every '\n'; the last piece is
  // ended by the newline before the sentinel; overlong pieces are bad.
  std::vector<std::string_view> pieces;
  for (size_t start = 0;;) {
    size_t nl = in.find('\n', start);
    pieces.push_back(in.substr(start, nl == std::string_view::npos ? nl : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  std::vector<std::string_view> short_pieces;
  for (std::string_view p : pieces) {
    if (p.size() <= kMaxLineBytes) short_pieces.push_back(p);
  }
  round += 1;
  {
    int fd = Listeners::Connect(SOCK_STREAM, l->dir + "/s.sock");
    const size_t split = size == 0 ? 0 : (static_cast<size_t>(data[0]) * size) / 256;
    WriteAll(fd, in.data(), split);
    WaitDrained(fd);
    WriteAll(fd, in.data() + split, size - split);
    std::string end = "\n" + std::string(kSentinel) + " " + std::to_string(round) + "\n";
    WriteAll(fd, end.data(), end.size());
    ::close(fd);
  }
  Compare(Expect(short_pieces), l->sink.Take(round));

  // 3. One datagram (lines as SplitDatagram makes them), then the sentinel.
  round += 1;
  if (size > 64 * 1024) return 0;  // the listener's datagram limit (counted bad)
  if (size > 0) Check(::send(l->dgram_fd, data, size, 0) == static_cast<ssize_t>(size), "send");
  std::string end = std::string(kSentinel) + " " + std::to_string(round) + "\n";
  Check(::send(l->dgram_fd, end.data(), end.size(), 0) == static_cast<ssize_t>(end.size()),
        "send sentinel");
  Compare(Expect(SplitDatagram(in)), l->sink.Take(round));
  return 0;
}
