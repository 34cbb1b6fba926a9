// libFuzzer target for the block codec (buffer/internal/block_codec.h):
// damaged blocks are refused, never trusted, never crash; events round-trip
// bit-exactly. Built with -DSLUICE_FUZZ=ON and clang (buffer/CMakeLists.txt).
//
// Input: byte 0 picks the mode.
//   even: the rest is a block. DecodeBlock and PeekBlock decide; then the
//         same bytes with their checksums recomputed (ResealBlockForTest),
//         so that the decoder's own bounds checks meet the damage. A block
//         that decodes re-encodes, and that decodes to the same events.
//   odd:  the rest describes events (FuzzedDataProvider: seq steps, times,
//         readings of a few sensors with any value and quality, alerts,
//         garbage bodies). They encode, decode back byte for byte, and the
//         block with one byte flipped is refused.
#include <fuzzer/FuzzedDataProvider.h>
#include <sanitizer/common_interface_defs.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "buffer/codec.h"
#include "buffer/internal/block_codec.h"
#include "buffer/ring.h"
#include "common/event.h"

using namespace sluice;

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  __sanitizer_report_error_summary((std::string("fuzz_block: check failed: ") + what).c_str());
  __builtin_trap();
}

bool Same(const std::vector<StoredEvent>& a, const std::vector<StoredEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].seq != b[i].seq || a[i].ts_us != b[i].ts_us || a[i].kind != b[i].kind ||
        a[i].sensor != b[i].sensor || a[i].body != b[i].body) {
      return false;
    }
  }
  return true;
}

void Redecode(const std::vector<StoredEvent>& events) {
  std::string again;
  Check(EncodeBlock(events, &again).ok(), "decoded events re-encode");
  std::vector<StoredEvent> back;
  Check(DecodeBlock(again, &back).ok(), "re-encoded block decodes");
  Check(Same(events, back), "re-encoded block decodes to the same events");
}

void FuzzBlock(const uint8_t* data, size_t size) {
  std::string block(reinterpret_cast<const char*>(data), size);
  std::vector<StoredEvent> out;
  BlockInfo info;
  const Status peek = PeekBlock(block, &info);
  if (DecodeBlock(block, &out).ok()) {
    Check(peek.ok() && info.count == out.size(), "a block that decodes peeks");
    Redecode(out);
  } else {
    Check(out.empty(), "a refused block adds no events");
  }
  out.clear();
  if (ResealBlockForTest(&block) && DecodeBlock(block, &out).ok()) Redecode(out);
}

StoredEvent Event(FuzzedDataProvider& in, uint64_t seq, int64_t ts) {
  StoredEvent e;
  e.seq = seq;
  e.ts_us = ts;
  const int what = in.ConsumeIntegralInRange<int>(0, 9);
  if (what == 0) {
    Alert a{"rule" + std::to_string(in.ConsumeIntegralInRange<int>(0, 3)), "firing", "info", ts,
            in.ConsumeFloatingPoint<double>(), in.ConsumeRandomLengthString(32),
            {{"k", in.ConsumeRandomLengthString(8)}}};
    e.kind = static_cast<int>(EventKind::kAlert);
    e.sensor = a.rule;
    e.body = EncodeAlert(a);
    SetEncodedSeq(&e.body, seq);
    return e;
  }
  if (what == 1) {  // anything at all
    e.kind = in.ConsumeIntegral<int>();
    e.sensor = in.ConsumeRandomLengthString(16);
    e.body = in.ConsumeRandomLengthString(96);
    return e;
  }
  Reading r;
  r.sensor = "s" + std::to_string(in.ConsumeIntegralInRange<int>(0, 5));
  r.unit = in.ConsumeBool() ? "C" : "";
  r.ts_us = ts;
  if (what < 6) {
    r.value = static_cast<double>(in.ConsumeIntegralInRange<int64_t>(-100000, 100000)) /
              (in.ConsumeBool() ? 100.0 : 10.0);
  } else {
    uint64_t bits = in.ConsumeIntegral<uint64_t>();
    std::memcpy(&r.value, &bits, sizeof bits);
  }
  r.quality = static_cast<Quality>(in.ConsumeIntegralInRange<int>(0, 2));
  e.kind = static_cast<int>(EventKind::kReading);
  e.sensor = r.sensor;
  e.body = EncodeReading(r);
  SetEncodedSeq(&e.body, in.ConsumeIntegralInRange<int>(0, 30) == 0 ? seq + 1 : seq);
  return e;
}

void FuzzEvents(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<StoredEvent> events;
  uint64_t seq = in.ConsumeIntegral<uint64_t>() >> in.ConsumeIntegralInRange<int>(0, 63);
  int64_t ts = in.ConsumeIntegral<int64_t>();
  const size_t n = in.ConsumeIntegralInRange<size_t>(0, 512);
  for (size_t i = 0; i < n && in.remaining_bytes() > 0; ++i) {
    if (i > 0) {
      const uint64_t step = in.ConsumeBool() ? 1 : in.ConsumeIntegralInRange<uint64_t>(1, 1000);
      if (seq > UINT64_MAX - step) break;
      seq += step;
    }
    const int64_t step = in.ConsumeBool()
                             ? 1000000 + in.ConsumeIntegralInRange<int64_t>(-2000, 2000)
                             : in.ConsumeIntegral<int32_t>();
    ts = static_cast<int64_t>(static_cast<uint64_t>(ts) + static_cast<uint64_t>(step));  // wraps
    events.push_back(Event(in, seq, ts));
  }
  std::string block;
  Check(EncodeBlock(events, &block).ok(), "events encode");
  std::vector<StoredEvent> back;
  Check(DecodeBlock(block, &back).ok(), "block decodes");
  Check(Same(events, back), "events round-trip byte for byte");
  if (block.empty()) return;
  const size_t at = in.ConsumeIntegralInRange<size_t>(0, block.size() - 1);
  const uint8_t mask = in.ConsumeIntegralInRange<uint8_t>(1, 255);
  block[at] = static_cast<char>(block[at] ^ mask);
  back.clear();
  Check(!DecodeBlock(block, &back).ok() && back.empty(), "a flipped byte is refused");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] % 2 == 0) {
    FuzzBlock(data + 1, size - 1);
  } else {
    FuzzEvents(data + 1, size - 1);
  }
  return 0;
}
