#include "bench/wear_blocks.h"

#include <cstdlib>
#include <vector>

#include "buffer/codec.h"
#include "buffer/internal/block_codec.h"
#include "buffer/ring.h"
#include "common/event.h"

namespace sluice {
namespace bench {

double BlockBytesPerReading(const std::function<std::string(uint64_t, uint64_t)>& lines,
                            uint64_t n, size_t per_block) {
  uint64_t bytes = 0;
  std::vector<StoredEvent> events;
  std::vector<StoredEvent> back;
  std::string block;
  for (uint64_t first = 0; first < n; first += per_block) {
    const uint64_t m = std::min<uint64_t>(per_block, n - first);
    const std::string text = lines(first, m);
    events.clear();
    for (size_t at = 0; at < text.size();) {
      size_t end = text.find('\n', at);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(at, end - at);
      at = end + 1;
      const size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
      if (sp1 == std::string::npos || sp2 == sp1) return -1;
      Reading r;
      r.sensor = line.substr(0, sp1);
      r.value = std::strtod(line.c_str() + sp1 + 1, nullptr);
      r.ts_us = std::strtoll(line.c_str() + sp2 + 1, nullptr, 10);
      StoredEvent e;
      e.seq = first + events.size() + 1;
      e.ts_us = r.ts_us;
      e.kind = static_cast<int>(EventKind::kReading);
      e.sensor = r.sensor;
      e.body = EncodeReading(r);
      SetEncodedSeq(&e.body, e.seq);
      events.push_back(std::move(e));
    }
    block.clear();
    back.clear();
    if (!EncodeBlock(events, &block).ok() || !DecodeBlock(block, &back).ok() ||
        back.size() != events.size()) {
      return -1;
    }
    for (size_t i = 0; i < back.size(); ++i) {
      if (back[i].body != events[i].body) return -1;
    }
    bytes += block.size();
  }
  return n == 0 ? -1 : static_cast<double>(bytes) / static_cast<double>(n);
}

}  // namespace bench
}  // namespace sluice
