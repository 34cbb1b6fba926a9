// The block codec (buffer/internal/block_codec.h): bit-exact round trips of
// real encoded events, every damaged or truncated block refused, and the
// bytes per reading of the at-rest workload.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "buffer/codec.h"
#include "buffer/internal/block_codec.h"
#include "common/event.h"

namespace sluice {
namespace {

StoredEvent MakeReading(uint64_t seq, const std::string& sensor, int64_t ts, double value,
                        const std::string& unit = "", Quality q = Quality::kGood) {
  StoredEvent e;
  e.seq = seq;
  e.ts_us = ts;
  e.kind = static_cast<int>(EventKind::kReading);
  e.sensor = sensor;
  e.body = EncodeReading(Reading{sensor, ts, value, unit, q});
  SetEncodedSeq(&e.body, seq);
  return e;
}

StoredEvent MakeAlert(uint64_t seq, const std::string& rule, int64_t ts, double value,
                      std::vector<std::pair<std::string, std::string>> labels) {
  Alert a{rule, "firing", "critical", ts, value, "value " + std::to_string(value), labels};
  StoredEvent e;
  e.seq = seq;
  e.ts_us = ts;
  e.kind = static_cast<int>(EventKind::kAlert);
  e.sensor = rule;
  e.body = EncodeAlert(a);
  SetEncodedSeq(&e.body, seq);
  return e;
}

double FromBits(uint64_t u) {
  double v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

// Encodes, peeks and decodes `events`; every field and body byte must come
// back. Returns the block.
std::string RoundTrip(const std::vector<StoredEvent>& events) {
  std::string block = "prefix";  // EncodeBlock appends
  REQUIRE(EncodeBlock(events, &block).ok());
  REQUIRE(block.compare(0, 6, "prefix") == 0);
  block.erase(0, 6);
  BlockInfo info;
  REQUIRE(PeekBlock(block, &info).ok());
  CHECK(info.count == events.size());
  CHECK(info.bytes == block.size());
  if (!events.empty()) {
    CHECK(info.first_seq == events.front().seq);
    CHECK(info.last_seq == events.back().seq);
  }
  std::vector<StoredEvent> out(1);  // DecodeBlock appends
  const Status st = DecodeBlock(block, &out);
  INFO(st.ToString());
  REQUIRE(st.ok());
  REQUIRE(out.size() == events.size() + 1);
  for (size_t i = 0; i < events.size(); ++i) {
    const StoredEvent& a = events[i];
    const StoredEvent& b = out[i + 1];
    INFO("event " << i << " seq " << a.seq);
    REQUIRE(b.seq == a.seq);
    REQUIRE(b.ts_us == a.ts_us);
    REQUIRE(b.kind == a.kind);
    REQUIRE(b.sensor == a.sensor);
    REQUIRE(b.body == a.body);  // byte for byte
  }
  return block;
}

// A random mix: many sensors, irregular seqs with gaps, jittered times,
// every kind of value, qualities, alerts and readings stored oddly.
std::vector<StoredEvent> RandomMix(uint32_t seed, size_t n) {
  std::mt19937_64 rng(seed);
  std::vector<StoredEvent> out;
  uint64_t seq = 1 + rng() % 1000000;
  const int sensors = 1 + static_cast<int>(rng() % 40);
  std::vector<int64_t> ts(sensors, 1764075600000000LL);
  std::vector<double> walk(sensors, 20.0);
  const double specials[] = {std::numeric_limits<double>::quiet_NaN(),
                             -std::numeric_limits<double>::quiet_NaN(),
                             FromBits(0x7ff0000000000123ULL),  // signalling NaN, payload
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             -0.0, 0.0, 1e308, -1.7976931348623157e308, 5e-324, 2.2e-308,
                             9007199254740993.0, 0.1, 1e-7, 123456.789012};
  for (size_t i = 0; i < n; ++i) {
    seq += 1 + (rng() % 4 == 0 ? rng() % 100 : 0);
    const int s = static_cast<int>(rng() % sensors);
    ts[s] += 1000000 + static_cast<int64_t>(rng() % 4001) - 2000;
    const std::string name = "site.sensor" + std::to_string(s);
    const int what = static_cast<int>(rng() % 20);
    if (what == 0) {
      out.push_back(MakeAlert(seq, "rule" + std::to_string(s), ts[s], walk[s],
                              {{"site", "plant-1"}, {"zone", std::to_string(rng() % 5)}}));
      continue;
    }
    double v;
    if (what < 10) {
      walk[s] += static_cast<double>(static_cast<int>(rng() % 7) - 3) / 100.0;
      v = std::round(walk[s] * 100) / 100;
    } else if (what < 14) {
      v = std::sin(static_cast<double>(i)) * 100 + static_cast<double>(rng() % 1000) / 7.0;
    } else if (what < 18) {
      v = specials[rng() % (sizeof specials / sizeof specials[0])];
    } else {
      v = FromBits(rng());  // any bit pattern
    }
    const Quality q = rng() % 8 == 0 ? static_cast<Quality>(rng() % 3) : Quality::kGood;
    out.push_back(MakeReading(seq, name, ts[s], v, s % 3 == 0 ? "C" : (s % 3 == 1 ? "%" : ""),
                              q));
  }
  return out;
}

TEST_CASE("Crc32c matches the Castagnoli check value", "[block]") {
  CHECK(Crc32c("123456789") == 0xE3069283u);
  CHECK(Crc32c("") == 0u);
  CHECK(Crc32c("56789", Crc32c("1234")) == 0xE3069283u);
}

TEST_CASE("empty block, one reading, one alert round-trip", "[block]") {
  std::string empty = RoundTrip({});
  CHECK(empty.size() < 32);
  RoundTrip({MakeReading(1, "t", 5, 21.5, "C")});
  RoundTrip({MakeAlert(7, "overheat", -5, std::nan(""), {{"k", "v"}})});
  RoundTrip({MakeReading(0, "", 0, 0)});
}

TEST_CASE("random mixes round-trip bit-exactly", "[block]") {
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    INFO("seed " << seed);
    RoundTrip(RandomMix(seed, 1 + seed * 37 % 1500));
  }
}

TEST_CASE("readings that do not re-encode byte for byte are kept verbatim", "[block]") {
  std::vector<StoredEvent> ev;
  ev.push_back(MakeReading(10, "a", 100, 1.5));
  StoredEvent renamed = MakeReading(11, "a", 200, 1.5);
  renamed.sensor = "b";  // column disagrees with the body
  ev.push_back(renamed);
  StoredEvent moved = MakeReading(12, "a", 300, 1.5);
  moved.ts_us = 301;
  ev.push_back(moved);
  StoredEvent reseq = MakeReading(13, "a", 400, 1.5);
  SetEncodedSeq(&reseq.body, 99);
  ev.push_back(reseq);
  StoredEvent padded = MakeReading(14, "a", 500, 1.5);
  padded.body += std::string(8, '\0');  // still verifies, not canonical
  ev.push_back(padded);
  StoredEvent garbage;
  garbage.seq = 15;
  garbage.ts_us = 600;
  garbage.body = "not a flatbuffer at all";
  ev.push_back(garbage);
  StoredEvent alert_as_reading = MakeAlert(16, "a", 700, 1, {});
  alert_as_reading.kind = static_cast<int>(EventKind::kReading);
  ev.push_back(alert_as_reading);
  StoredEvent odd_kind = MakeReading(17, "a", 800, 2.5);
  odd_kind.kind = -7;
  ev.push_back(odd_kind);
  ev.push_back(MakeReading(18, "a", 900, 2.5));
  RoundTrip(ev);
}

TEST_CASE("extreme seqs, timestamps and values round-trip", "[block]") {
  const int64_t lo = std::numeric_limits<int64_t>::min(), hi = std::numeric_limits<int64_t>::max();
  RoundTrip({MakeReading(1, "x", hi, 1), MakeReading(2, "x", lo, 2), MakeReading(3, "x", hi, 3),
             MakeReading(UINT64_MAX - 1, "x", 0, -0.0), MakeReading(UINT64_MAX, "y", lo, 1e-300)});
  RoundTrip({MakeReading(5, "d", 0, 9007199254740.992), MakeReading(6, "d", 1, -9007199254740.991),
             MakeReading(7, "d", 2, 0.000001), MakeReading(8, "d", 3, 1e15)});
}

TEST_CASE("65,536 events round-trip", "[block]") {
  RoundTrip(RandomMix(4242, 65536));
  std::vector<StoredEvent> same;
  for (uint64_t i = 0; i < 65536; ++i) {
    same.push_back(MakeReading(i + 1, "flat", static_cast<int64_t>(i) * 1000, 7.25));
  }
  const std::string block = RoundTrip(same);
  CHECK(block.size() < 100);  // a constant series costs next to nothing
}

TEST_CASE("EncodeBlock refuses seqs that do not increase", "[block]") {
  std::string out = "x";
  Status st = EncodeBlock({MakeReading(2, "a", 1, 1), MakeReading(2, "a", 2, 2)}, &out);
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(out == "x");
  st = EncodeBlock({MakeReading(3, "a", 1, 1), MakeReading(1, "a", 2, 2)}, &out);
  CHECK(st.code() == StatusCode::kInvalidArgument);
}

TEST_CASE("blocks in a row are walked with PeekBlock", "[block]") {
  std::string segment;
  REQUIRE(EncodeBlock({MakeReading(1, "a", 10, 1), MakeReading(2, "a", 20, 2)}, &segment).ok());
  REQUIRE(EncodeBlock({MakeReading(5, "a", 50, 5)}, &segment).ok());
  BlockInfo first, second;
  REQUIRE(PeekBlock(segment, &first).ok());
  CHECK(first.min_ts_us == 10);
  CHECK(first.max_ts_us == 20);
  REQUIRE(PeekBlock(std::string_view(segment).substr(first.bytes), &second).ok());
  CHECK(second.first_seq == 5);
  CHECK(first.bytes + second.bytes == segment.size());
  std::vector<StoredEvent> out;
  CHECK(DecodeBlock(segment, &out).code() == StatusCode::kCorruption);  // two blocks, not one
  CHECK(out.empty());
}

std::vector<StoredEvent> SmallMix() {
  std::vector<StoredEvent> ev = RandomMix(7, 24);
  ev.push_back(MakeAlert(ev.back().seq + 3, "hot", ev.back().ts_us + 1, 90.5, {{"a", "b"}}));
  for (int i = 0; i < 6; ++i) {
    ev.push_back(MakeReading(ev.back().seq + 1, "w", 1000000 * i, 21.25 + i, "C"));
  }
  return ev;
}

TEST_CASE("every flipped byte and every truncation is refused, never a crash", "[block]") {
  std::string block;
  REQUIRE(EncodeBlock(SmallMix(), &block).ok());
  INFO("block of " << block.size() << " bytes");
  std::vector<StoredEvent> out;
  for (size_t i = 0; i < block.size(); ++i) {
    for (int mask : {0x01, 0x80, 0xff}) {
      std::string bad = block;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      INFO("byte " << i << " ^ " << mask);
      const Status st = DecodeBlock(bad, &out);
      REQUIRE(st.code() == StatusCode::kCorruption);
      REQUIRE(!st.message().empty());
      REQUIRE(out.empty());
      // Behind the checksums: the decoder's own bounds checks decide. A
      // damaged block may then decode to other events, never crash.
      if (ResealBlockForTest(&bad)) (void)DecodeBlock(bad, &out).ok();
      out.clear();
    }
  }
  for (size_t len = 0; len < block.size(); ++len) {
    INFO("truncated to " << len);
    const std::string_view cut(block.data(), len);
    REQUIRE(DecodeBlock(cut, &out).code() == StatusCode::kCorruption);
    BlockInfo info;
    REQUIRE(PeekBlock(cut, &info).code() == StatusCode::kCorruption);
    std::string resealed(cut);
    if (ResealBlockForTest(&resealed)) (void)DecodeBlock(resealed, &out).ok();
    out.clear();
  }
}

// The at-rest workload (bench/wear.cpp RestLines): 20 sensors at 1 s
// cadence with ±2 ms of jitter, 2-decimal random walks (or, with
// `full_precision`, a noisy sine), seqs interleaved as the ring assigns them.
std::vector<StoredEvent> RestWorkload(size_t n, bool full_precision) {
  std::mt19937_64 rng(20);
  std::vector<int64_t> walk(20, 2150);
  std::vector<StoredEvent> out;
  const int64_t t0 = 1764075600000000LL;
  for (size_t i = 0; i < n; ++i) {
    const int s = static_cast<int>(i % 20);
    const int64_t tick = static_cast<int64_t>(i / 20);
    const int64_t ts = t0 + tick * 1000000 + static_cast<int64_t>(rng() % 4001) - 2000;
    double v;
    if (full_precision) {
      v = 20 + 5 * std::sin(static_cast<double>(tick) / 60 + s) +
          std::uniform_real_distribution<double>(-0.05, 0.05)(rng);
    } else {
      walk[s] += static_cast<int64_t>(rng() % 7) - 3;
      v = static_cast<double>(walk[s]) / 100;
    }
    out.push_back(MakeReading(i + 1, "wear.s" + std::to_string(s), ts, v));
  }
  return out;
}

double BytesPerReading(const std::vector<StoredEvent>& all, size_t per_block) {
  size_t bytes = 0;
  for (size_t at = 0; at < all.size(); at += per_block) {
    std::vector<StoredEvent> part(all.begin() + at,
                                  all.begin() + std::min(all.size(), at + per_block));
    std::string block;
    REQUIRE(EncodeBlock(part, &block).ok());
    std::vector<StoredEvent> back;
    REQUIRE(DecodeBlock(block, &back).ok());
    REQUIRE(back.size() == part.size());
    for (size_t i = 0; i < part.size(); ++i) REQUIRE(back[i].body == part[i].body);
    bytes += block.size();
  }
  return static_cast<double>(bytes) / static_cast<double>(all.size());
}

TEST_CASE("bytes per reading of the at-rest workload", "[block][size]") {
  const std::vector<StoredEvent> decimal = RestWorkload(40000, false);
  const std::vector<StoredEvent> full = RestWorkload(40000, true);
  const double d200 = BytesPerReading(decimal, 200), d4000 = BytesPerReading(decimal, 4000);
  const double f200 = BytesPerReading(full, 200), f4000 = BytesPerReading(full, 4000);
  std::printf("block codec, 20 sensors, 1 s +-2 ms, 2-decimal values: %.2f B/reading in blocks "
              "of 200, %.2f in blocks of 4000\n", d200, d4000);
  std::printf("block codec, 20 sensors, 1 s +-2 ms, full-precision values: %.2f B/reading in "
              "blocks of 200, %.2f in blocks of 4000\n", f200, f4000);
  CHECK(d200 <= 4.0);
}

}  // namespace
}  // namespace sluice
