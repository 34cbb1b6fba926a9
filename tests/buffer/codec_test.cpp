#include <catch2/catch.hpp>

#include "buffer/codec.h"
#include "schemas/sluice_generated.h"

namespace sluice {
namespace {

TEST_CASE("EncodeReading round-trips and SetEncodedSeq sets seq in place",
          "[codec]") {
  Reading r;
  r.sensor = "boiler.temp";
  r.ts_us = 1764075600123456;
  r.value = 21.5;
  r.unit = "C";
  r.quality = Quality::kUncertain;
  std::string body = EncodeReading(r);
  REQUIRE(VerifyEncodedEvent(body.data(), body.size()));
  const auto* e = flatbuffers::GetRoot<fb::Event>(body.data());
  CHECK(e->seq() == 0);
  CHECK(e->kind() == fb::Kind::Reading);
  CHECK(e->sensor()->str() == "boiler.temp");
  CHECK(e->unit()->str() == "C");
  CHECK(e->value() == 21.5);
  CHECK(e->ts_us() == 1764075600123456);
  CHECK(e->quality() == fb::Quality::Uncertain);

  size_t size = body.size();
  SetEncodedSeq(&body, 42);
  CHECK(body.size() == size);
  REQUIRE(VerifyEncodedEvent(body.data(), body.size()));
  CHECK(flatbuffers::GetRoot<fb::Event>(body.data())->seq() == 42);
  SetEncodedSeq(&body, UINT64_MAX);
  CHECK(flatbuffers::GetRoot<fb::Event>(body.data())->seq() == UINT64_MAX);
}

TEST_CASE("EncodeAlert round-trips with labels", "[codec]") {
  Alert a;
  a.rule = "boiler_overheat";
  a.state = "firing";
  a.severity = "critical";
  a.ts_us = 5;
  a.value = 86.2;
  a.message = "Boiler at 86.2 C";
  a.labels = {{"site", "plant-1"}, {"zone", "b"}};
  std::string body = EncodeAlert(a);
  SetEncodedSeq(&body, 43);
  REQUIRE(VerifyEncodedEvent(body.data(), body.size()));
  const auto* e = flatbuffers::GetRoot<fb::Event>(body.data());
  CHECK(e->seq() == 43);
  CHECK(e->kind() == fb::Kind::Alert);
  CHECK(e->rule()->str() == "boiler_overheat");
  CHECK(e->state()->str() == "firing");
  CHECK(e->severity()->str() == "critical");
  CHECK(e->message()->str() == "Boiler at 86.2 C");
  REQUIRE(e->labels()->size() == 2);
  CHECK(e->labels()->Get(1)->key()->str() == "zone");
  CHECK(e->labels()->Get(1)->value()->str() == "b");
}

TEST_CASE("VerifyEncodedEvent rejects garbage and truncation", "[codec]") {
  CHECK_FALSE(VerifyEncodedEvent(nullptr, 0));
  std::string junk(64, '\xff');
  CHECK_FALSE(VerifyEncodedEvent(junk.data(), junk.size()));
  Reading r;
  r.sensor = "s";
  std::string body = EncodeReading(r);
  CHECK_FALSE(VerifyEncodedEvent(body.data(), body.size() / 2));
}

}  // namespace
}  // namespace sluice
