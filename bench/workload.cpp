#include <cmath>
#include <utility>

#include "bench/bench.h"
#include "bench/util.h"
#include "buffer/codec.h"
#include "common/clock.h"
#include "common/event.h"

namespace sluice {
namespace bench {

const char* const kSensors[kSensorCount] = {"boiler.temp", "pump.rpm", "pump.current",
                                            "room.humidity"};

std::vector<Record> MakeRecords(uint64_t first, uint64_t n) {
  std::vector<Record> out;
  out.reserve(n);
  const int64_t t0 = 1764075600000000;
  for (uint64_t i = first; i < first + n; ++i) {
    Reading r;
    r.sensor = kSensors[i % kSensorCount];
    r.ts_us = t0 + static_cast<int64_t>(i) * 1000;
    r.value = std::round((50 + 30 * std::sin(static_cast<double>(i) / 500.0)) * 100) / 100;
    r.unit = "C";
    Record rec;
    rec.kind = static_cast<int>(EventKind::kReading);
    rec.priority = kReadingPriority;
    rec.ts_us = r.ts_us;
    rec.sensor = r.sensor;
    rec.body = EncodeReading(r);
    out.push_back(std::move(rec));
  }
  return out;
}

RingOptions RingOptionsFor(const std::string& data_dir, uint64_t n, Durability d) {
  RingOptions o;
  o.data_dir = data_dir;
  o.max_events = std::max<uint64_t>(1000000, 2 * n);
  o.max_bytes = 4ull << 30;
  o.durability = d;
  return o;
}

StatusOr<double> BuildBacklog(const std::string& data_dir, uint64_t n,
                              const std::vector<std::string>& upstreams) {
  RingOptions o = RingOptionsFor(data_dir, n, Durability::kNormal);
  o.upstreams = upstreams;
  auto ring = Ring::Open(o, SystemClock::Get());
  if (!ring.ok()) return ring.status();
  const int64_t start = NowUs();
  // Built in slices so the pre-encoded records never all sit in memory.
  constexpr uint64_t kSlice = 100000;
  for (uint64_t done = 0; done < n;) {
    const uint64_t m = std::min(kSlice, n - done);
    std::vector<Record> recs = MakeRecords(done, m);
    for (Record& r : recs) {
      Status s = (*ring)->Append(std::move(r), 60000000);
      if (!s.ok()) return s;
    }
    done += m;
  }
  Status f = (*ring)->Flush();
  if (!f.ok()) return f;
  const double secs = static_cast<double>(NowUs() - start) / 1e6;
  if ((*ring)->LastSeq() != n) {
    return Internal("backlog: last seq " + std::to_string((*ring)->LastSeq()) + ", expected " +
                    std::to_string(n));
  }
  Status s = (*ring)->Stop();
  if (!s.ok()) return s;
  return secs;
}

}  // namespace bench
}  // namespace sluice
