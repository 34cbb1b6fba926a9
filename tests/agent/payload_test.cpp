#include "agent/payload/payload.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "tests/agent/event_builder.h"

namespace sluice {
namespace {

using testing::MakeAlertEvent;
using testing::MakeReadingEvent;

std::string Json(const StoredEvent& e, const std::string& agent = "gw-001") {
  std::string out;
  REQUIRE(EventToJson(agent, e, &out).ok());
  return out;
}

TEST_CASE("reading JSON matches the contract's golden string", "[payload]") {
  CHECK(Json(MakeReadingEvent(42, "boiler.temp", 1764075600123456, 21.5, "C")) ==
        R"({"agent":"gw-001","seq":42,"sensor":"boiler.temp","ts_us":1764075600123456,)"
        R"("value":21.5,"unit":"C","quality":"good"})");
  CHECK(Json(MakeReadingEvent(7, "p", -5, 0.1, "", fb::Quality::Uncertain)) ==
        R"({"agent":"gw-001","seq":7,"sensor":"p","ts_us":-5,"value":0.1,"unit":"","quality":"uncertain"})");
  CHECK(Json(MakeReadingEvent(8, "p", 1, 3, "V", fb::Quality::Bad)) ==
        R"({"agent":"gw-001","seq":8,"sensor":"p","ts_us":1,"value":3,"unit":"V","quality":"bad"})");
}

TEST_CASE("alert JSON matches the contract's golden string", "[payload]") {
  CHECK(Json(MakeAlertEvent(43, "boiler_overheat", "firing", "critical", 1764075600123456, 86.2,
                            "Boiler at 86.2 C", {{"site", "plant-1"}})) ==
        R"({"agent":"gw-001","seq":43,"rule":"boiler_overheat","state":"firing",)"
        R"("severity":"critical","ts_us":1764075600123456,"value":86.2,)"
        R"("message":"Boiler at 86.2 C","labels":{"site":"plant-1"}})");
  CHECK(Json(MakeAlertEvent(44, "r", "resolved", "info", 2, 1.0, "", {})) ==
        R"({"agent":"gw-001","seq":44,"rule":"r","state":"resolved","severity":"info",)"
        R"("ts_us":2,"value":1,"message":"","labels":{}})");
  CHECK(Json(MakeAlertEvent(45, "r", "firing", "warning", 2, 1.0, "m",
                            {{"a", "1"}, {"b", "x\"y"}})) ==
        R"({"agent":"gw-001","seq":45,"rule":"r","state":"firing","severity":"warning",)"
        R"("ts_us":2,"value":1,"message":"m","labels":{"a":"1","b":"x\"y"}})");
}

TEST_CASE("JSON strings are escaped", "[payload]") {
  auto s = [](std::string_view in) {
    std::string out;
    AppendJsonString(in, &out);
    return out;
  };
  CHECK(s("plain") == "\"plain\"");
  CHECK(s("q\"b\\s/") == R"("q\"b\\s/")");
  CHECK(s("\n\r\t\b\f") == R"("\n\r\t\b\f")");
  CHECK(s(std::string("\x01\x1f\x00", 3)) == R"("\u0001\u001f\u0000")");
  CHECK(s("\x7f") == "\"\x7f\"");
  CHECK(s("Grad \xc2\xb0" "C \xe2\x82\xac \xf0\x9f\x94\xa5") ==
        "\"Grad \xc2\xb0" "C \xe2\x82\xac \xf0\x9f\x94\xa5\"");  // UTF-8 passes through
  CHECK(s("bad \xff \xc3") == R"("bad \ufffd \ufffd")");
  CHECK(s("\xed\xa0\x80") == R"("\ufffd\ufffd\ufffd")");  // a surrogate is invalid
  CHECK(s("\xc0\xaf") == R"("\ufffd\ufffd")");            // overlong
  // Escaping inside a full document.
  CHECK(Json(MakeAlertEvent(1, "r", "firing", "info", 0, 1, "line1\nline2 \"q\"", {}), "g\\w") ==
        R"({"agent":"g\\w","seq":1,"rule":"r","state":"firing","severity":"info","ts_us":0,)"
        R"("value":1,"message":"line1\nline2 \"q\"","labels":{}})");
}

TEST_CASE("JSON numbers are shortest round-trip, non-finite is null", "[payload]") {
  auto d = [](double v) {
    std::string out;
    AppendJsonDouble(v, &out);
    return out;
  };
  CHECK(d(21.5) == "21.5");
  CHECK(d(0.1) == "0.1");
  CHECK(d(86.2) == "86.2");
  CHECK(d(100) == "100");
  CHECK(d(-3.25) == "-3.25");
  CHECK(d(1e21) == "1e+21");
  CHECK(d(1.0 / 3) == "0.3333333333333333");
  CHECK(d(5e-324) == "5e-324");
  CHECK(std::stod(d(0.30000000000000004)) == 0.30000000000000004);
  CHECK(d(std::numeric_limits<double>::quiet_NaN()) == "null");
  CHECK(d(std::numeric_limits<double>::infinity()) == "null");
  CHECK(d(-std::numeric_limits<double>::infinity()) == "null");
  CHECK(Json(MakeReadingEvent(1, "s", 0, std::nan(""), "")) ==
        R"({"agent":"gw-001","seq":1,"sensor":"s","ts_us":0,"value":null,"unit":"","quality":"good"})");
  // An alert whose subject had no value: null, in JSON and through a batch.
  StoredEvent none = MakeAlertEvent(2, "dz", "firing", "warning", 5, std::nan(""), "dz n/a", {});
  CHECK(Json(none) ==
        R"({"agent":"gw-001","seq":2,"rule":"dz","state":"firing","severity":"warning","ts_us":5,)"
        R"("value":null,"message":"dz n/a","labels":{}})");
  BatchEncoder enc("gw-001", 256);
  REQUIRE(enc.Add(none).ok());
  enc.Finish();
  const fb::Batch* batch = flatbuffers::GetRoot<fb::Batch>(enc.data());
  REQUIRE(batch->events()->size() == 1);
  CHECK(std::isnan(batch->events()->Get(0)->value()));
}

TEST_CASE("a corrupt body is refused, not decoded", "[payload]") {
  StoredEvent e = MakeReadingEvent(1, "s", 0, 1, "");
  e.body = "garbage that is not a flatbuffer";
  std::string out = "old";
  CHECK(EventToJson("a", e, &out).code() == StatusCode::kCorruption);
  CHECK(out.empty());
  BatchEncoder b("a");
  CHECK(b.Add(e).code() == StatusCode::kCorruption);
  CHECK(b.count() == 0);
}

TEST_CASE("flatbuffers batch round-trips every event", "[payload]") {
  BatchEncoder enc("gw-001", 16);  // tiny start: the builder must grow
  for (int round = 0; round < 2; ++round) {  // reuse after Clear()
    enc.Clear();
    const uint64_t base = round * 1000 + 1;
    for (uint64_t i = 0; i < 100; ++i) {
      if (i % 10 == 9) {
        REQUIRE(enc.Add(MakeAlertEvent(base + i, "rule" + std::to_string(i), "firing", "critical",
                                       1000 + i, i * 0.5, "msg \"" + std::to_string(i),
                                       {{"site", "p1"}, {"k", "v"}}))
                    .ok());
      } else {
        REQUIRE(enc.Add(MakeReadingEvent(base + i, "s" + std::to_string(i % 3), 1000 + i,
                                         i * 1.5, "C", fb::Quality::Uncertain))
                    .ok());
      }
    }
    enc.Finish();
    CHECK(enc.count() == 100);
    CHECK(enc.first_seq() == base);
    CHECK(enc.last_seq() == base + 99);

    flatbuffers::Verifier v(enc.data(), enc.size());
    REQUIRE(fb::VerifyBatchBuffer(v));
    const fb::Batch* batch = fb::GetBatch(enc.data());
    REQUIRE(batch->agent()->str() == "gw-001");
    REQUIRE(batch->events()->size() == 100);
    for (uint64_t i = 0; i < 100; ++i) {
      const fb::Event* e = batch->events()->Get(static_cast<flatbuffers::uoffset_t>(i));
      CHECK(e->seq() == base + i);
      CHECK(e->ts_us() == static_cast<int64_t>(1000 + i));
      CHECK(e->value() == i * (i % 10 == 9 ? 0.5 : 1.5));
      if (i % 10 == 9) {
        CHECK(e->kind() == fb::Kind::Alert);
        CHECK(e->rule()->str() == "rule" + std::to_string(i));
        CHECK(e->state()->str() == "firing");
        CHECK(e->severity()->str() == "critical");
        CHECK(e->message()->str() == "msg \"" + std::to_string(i));
        REQUIRE(e->labels()->size() == 2);
        CHECK(e->labels()->Get(1)->key()->str() == "k");
        CHECK(e->labels()->Get(1)->value()->str() == "v");
      } else {
        CHECK(e->kind() == fb::Kind::Reading);
        CHECK(e->sensor()->str() == "s" + std::to_string(i % 3));
        CHECK(e->unit()->str() == "C");
        CHECK(e->quality() == fb::Quality::Uncertain);
      }
    }
  }
}

}  // namespace
}  // namespace sluice
