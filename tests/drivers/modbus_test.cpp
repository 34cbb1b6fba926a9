// The modbus driver against a real libmodbus server: TCP on a free loopback
// port, RTU on the far side of a pseudo-terminal.
#include "drivers/modbus/modbus.h"
#include "drivers/modbus/modbus_tcp_frame.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pty.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <thread>

#include "common/clock.h"
#include "drivers/scheduler.h"
#include "make_driver.h"
#include "modbus_server.h"
#include "test_sink.h"
#include "tests/support/support.h"

using namespace sluice;
using sluice::testing::MakeDriver;
using sluice::testing::ModbusTestServer;

namespace {

struct TcpFixture {
  int port = testing::FreeLoopbackPort();
  ModbusTestServer server{port};
  FakeClock clock;
  std::string url = "tcp://127.0.0.1:" + std::to_string(port);
  TcpFixture() {
    std::string err;
    REQUIRE(server.Start(&err));
  }
  std::unique_ptr<Driver> Make(const std::string& params, const std::string& name = "m") {
    auto d = MakeDriver(clock, "modbus", "{ url = \"" + url + "\", " + params + " }", name);
    INFO(d.status().message());
    REQUIRE(d.ok());
    return std::move(*d);
  }
};

// The four big-endian bytes ABCD of a 32-bit pattern laid out as the device
// would store them, built independently of the driver's codec.
std::vector<uint16_t> Layout(uint32_t u, bool word_little, bool byte_little) {
  uint8_t b[4] = {uint8_t(u >> 24), uint8_t(u >> 16), uint8_t(u >> 8), uint8_t(u)};
  auto reg = [&](int i) {
    return byte_little ? uint16_t(b[i + 1] << 8 | b[i]) : uint16_t(b[i] << 8 | b[i + 1]);
  };
  uint16_t hi = reg(0), lo = reg(2);
  return word_little ? std::vector<uint16_t>{lo, hi} : std::vector<uint16_t>{hi, lo};
}

std::vector<uint16_t> Layout16(uint16_t u, bool byte_little) {
  return {byte_little ? uint16_t(u << 8 | u >> 8) : u};
}

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace

TEST_CASE("modbus reads every type in every word and byte order over TCP") {
  TcpFixture f;
  struct Case {
    const char* type;
    double value;
    uint32_t bits;
    bool wide;
  };
  const Case cases[] = {
      {"int16", -12345, uint16_t(int16_t(-12345)), false},
      {"uint16", 54321, 54321, false},
      {"int32", -123456789, uint32_t(int32_t(-123456789)), true},
      {"uint32", 3000000000.0, 3000000000u, true},
      {"float32", -1234.5, FloatBits(-1234.5f), true},
  };
  int addr = 0;
  for (const Case& c : cases) {
    for (bool word_little : {false, true}) {
      if (!c.wide && word_little) continue;
      for (bool byte_little : {false, true}) {
        std::vector<uint16_t> regs = c.wide ? Layout(c.bits, word_little, byte_little)
                                            : Layout16(uint16_t(c.bits), byte_little);
        f.server.SetHolding(addr, regs);
        f.server.SetInput(addr, regs);
        std::string p = std::string("type = \"") + c.type + "\", byte_order = \"" +
                        (byte_little ? "little" : "big") + "\"";
        if (c.wide) p += std::string(", word_order = \"") + (word_little ? "little" : "big") + "\"";
        INFO(p);
        auto holding = f.Make(p + ", register = " + std::to_string(addr));
        auto input = f.Make(p + ", kind = \"input\", register = " + std::to_string(addr));
        CHECK(holding->blocking());
        StatusOr<double> h = holding->Sample(0);
        StatusOr<double> i = input->Sample(0);
        INFO(h.status().message());
        REQUIRE(h.ok());
        REQUIRE(i.ok());
        CHECK(*h == c.value);
        CHECK(*i == c.value);
        addr += 2;
      }
    }
  }
  // A wrong word order reads a different number: the orders really differ.
  f.server.SetHolding(90, Layout(3000000000u, false, false));
  auto wrong = f.Make("type = \"uint32\", word_order = \"little\", register = 90");
  CHECK(*wrong->Sample(0) != 3000000000.0);
}

TEST_CASE("modbus reads coils and discrete inputs as 0 and 1") {
  TcpFixture f;
  f.server.SetCoil(3, true);
  f.server.SetDiscrete(4, true);
  auto coil_on = f.Make("table = \"coil\", register = 3");
  auto coil_off = f.Make("function = \"coil\", register = 4");
  auto disc_on = f.Make("kind = \"discrete\", register = 4");
  CHECK(*coil_on->Sample(0) == 1.0);
  CHECK(*coil_off->Sample(0) == 0.0);
  CHECK(*disc_on->Sample(0) == 1.0);
  f.server.SetCoil(3, false);
  CHECK(*coil_on->Sample(0) == 0.0);
}

TEST_CASE("modbus sensors of one device share one connection", "[tsan]") {
  TcpFixture f;
  f.server.SetHolding(10, {100, 200, 300, 400});
  std::vector<std::unique_ptr<Driver>> sensors;
  for (int i = 0; i < 4; ++i) {
    sensors.push_back(f.Make("register = " + std::to_string(10 + i), "m" + std::to_string(i)));
  }
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 50; ++k) {
        StatusOr<double> v = sensors[size_t(i)]->Sample(0);
        if (v.ok() && *v == 100.0 * (i + 1)) ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(good == 200);
  CHECK(f.server.accepts() == 1);
  CHECK(f.server.requests() == 200);
}

TEST_CASE("modbus reconnects with backoff after the server goes away and comes back") {
  TcpFixture f;
  f.server.SetHolding(0, {42});
  auto d = f.Make("register = 0, reconnect_min = \"1s\", reconnect_max = \"4s\"");
  auto& link = static_cast<ModbusDriver&>(*d).link();
  REQUIRE(*d->Sample(0) == 42);
  f.server.Stop();

  StatusOr<double> cut = d->Sample(0);  // the old connection fails
  REQUIRE_FALSE(cut.ok());
  CHECK_THAT(cut.status().message(), Catch::Contains(f.url));
  StatusOr<double> refused = d->Sample(0);  // reconnect refused: backoff starts
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.status().message(), Catch::Contains("cannot connect: Connection refused"));
  StatusOr<double> waiting = d->Sample(0);  // within the backoff: no attempt
  REQUIRE_FALSE(waiting.ok());
  CHECK(waiting.status().code() == StatusCode::kUnavailable);
  CHECK_THAT(waiting.status().message(), Catch::Contains("next attempt in"));

  std::string err;
  REQUIRE(f.server.Start(&err));
  f.server.SetHolding(0, {43});
  CHECK_FALSE(d->Sample(0).ok());  // the server is back, but the backoff holds
  f.clock.Advance(4000000);        // past the longest first delay
  StatusOr<double> back = d->Sample(0);
  INFO(back.status().message());
  REQUIRE(back.ok());
  CHECK(*back == 43);
  CHECK(link.connects() == 2);
  CHECK(f.server.accepts() == 2);  // one connection before the cut, one after
}

TEST_CASE("modbus exception responses name the device and keep the connection") {
  TcpFixture f;
  f.server.SetHolding(5, {7});
  auto good = f.Make("register = 5", "good");
  auto bad = f.Make("register = 150", "bad");
  auto bad32 = f.Make("register = 99, type = \"float32\"", "bad32");  // 99 and 100
  REQUIRE(*good->Sample(0) == 7);
  StatusOr<double> v = bad->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::Contains(f.url) && Catch::Contains("unit 1") &&
                                       Catch::Contains("holding register 150") &&
                                       Catch::Contains("Illegal data address"));
  StatusOr<double> v32 = bad32->Sample(0);
  REQUIRE_FALSE(v32.ok());
  CHECK_THAT(v32.status().message(),
             Catch::Contains("holding register 99 (2)") && Catch::Contains("Illegal data address"));
  CHECK(*good->Sample(0) == 7);
  CHECK(f.server.accepts() == 1);
}

TEST_CASE("modbus TCP: a response whose MBAP length is wrong commits nothing and resets once") {
  TcpFixture f;
  f.server.SetHolding(0, {42});
  auto d = f.Make("register = 0, timeout = \"500ms\"");
  auto& link = static_cast<ModbusDriver&>(*d).link();
  REQUIRE(*d->Sample(0) == 42);
  f.server.SetBadLength(true);
  // Every read of the bad responses fails: none commits a value, and each
  // one resets the connection once (no leftovers break a later read).
  for (int i = 0; i < 6; ++i) {
    StatusOr<double> v = d->Sample(0);
    INFO(i << ": " << (v.ok() ? std::to_string(*v) : v.status().message()));
    REQUIRE_FALSE(v.ok());
    CHECK_THAT(v.status().message(),
               Catch::Contains(f.url) && Catch::Contains("MBAP length 65535"));
  }
  CHECK(link.connects() == 6);  // the first, then one after each reset but the last
  f.server.SetBadLength(false);
  StatusOr<double> back = d->Sample(0);
  INFO(back.status().message());
  REQUIRE(back.ok());
  CHECK(*back == 42);
  CHECK(*d->Sample(0) == 42);
  CHECK(link.connects() == 7);
}

TEST_CASE("modbus TCP frame checks") {
  std::vector<uint16_t> out;
  int code = 0;
  std::string why;
  const uint8_t good[] = {3, 4, 0x12, 0x34, 0x56, 0x78};
  CHECK(ParseModbusReadPdu(good, sizeof good, ModbusTable::kHolding, 2, &out, &code, &why) ==
        ModbusFrameError::kNone);
  CHECK(out == std::vector<uint16_t>{0x1234, 0x5678});
  CHECK(ParseModbusReadPdu(good, 4, ModbusTable::kHolding, 2, &out, &code, &why) ==
        ModbusFrameError::kFraming);
  CHECK(ParseModbusReadPdu(good, sizeof good, ModbusTable::kHolding, 1, &out, &code, &why) ==
        ModbusFrameError::kFraming);
  CHECK(ParseModbusReadPdu(good, sizeof good, ModbusTable::kInput, 2, &out, &code, &why) ==
        ModbusFrameError::kFraming);
  const uint8_t exc[] = {0x83, 2};
  CHECK(ParseModbusReadPdu(exc, sizeof exc, ModbusTable::kHolding, 1, &out, &code, &why) ==
        ModbusFrameError::kException);
  CHECK(code == 2);
  const uint8_t coils[] = {1, 2, 0x05, 0x01};
  CHECK(ParseModbusReadPdu(coils, sizeof coils, ModbusTable::kCoil, 9, &out, &code, &why) ==
        ModbusFrameError::kNone);
  CHECK(out == std::vector<uint16_t>{1, 0, 1, 0, 0, 0, 0, 0, 1});
  const uint8_t h[] = {0, 7, 0, 0, 0, 5, 1};
  CHECK(*ModbusTcpBodyLength(h, 7, 1) == 4);
  CHECK_FALSE(ModbusTcpBodyLength(h, 8, 1).ok());
  CHECK_FALSE(ModbusTcpBodyLength(h, 7, 2).ok());
  const uint8_t huge[] = {0, 7, 0, 0, 0xff, 0xff, 1};
  CHECK_THAT(ModbusTcpBodyLength(huge, 7, 1).status().message(),
             Catch::Contains("MBAP length 65535"));
}

TEST_CASE("modbus times out on a TCP peer that never answers") {
  // A listening socket nobody accepts on: the handshake completes in the
  // kernel, no response ever comes.
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(s >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  REQUIRE(listen(s, 4) == 0);
  FakeClock clock;
  auto d = MakeDriver(clock, "modbus",
                      "{ url = \"tcp://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) +
                          "\", register = 1, timeout = \"200ms\" }");
  REQUIRE(d.ok());
  StatusOr<double> v = (*d)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().code() == StatusCode::kTimeout);
  CHECK_THAT(v.status().message(), Catch::Contains("timed out"));
  close(s);
}

TEST_CASE("modbus RTU over a pseudo-terminal") {
  int master = -1, slave = -1;
  char name[128];
  REQUIRE(openpty(&master, &slave, name, nullptr, nullptr) == 0);
  termios t{};
  REQUIRE(tcgetattr(slave, &t) == 0);
  cfmakeraw(&t);
  REQUIRE(tcsetattr(slave, TCSANOW, &t) == 0);
  ModbusTestServer server(master, 7);
  std::string err;
  REQUIRE(server.Start(&err));
  server.SetHolding(20, Layout(FloatBits(21.75f), true, false));
  server.SetInput(3, {65000});
  FakeClock clock;
  std::string url = std::string("rtu://") + name + "?baud=19200&parity=E";
  auto temp = MakeDriver(clock, "modbus",
                         "{ url = \"" + url +
                             "\", unit = 7, register = 20, type = \"float32\", "
                             "word_order = \"little\", timeout = \"400ms\" }",
                         "temp");
  INFO(temp.status().message());
  REQUIRE(temp.ok());
  // The same port by its path with separate serial params: one shared link.
  auto input = MakeDriver(clock, "modbus",
                          std::string("{ device = \"") + name +
                              "\", baud = 19200, "
                              "parity = \"even\", unit = 7, kind = \"input\", register = 3 }",
                          "in");
  INFO(input.status().message());
  REQUIRE(input.ok());
  auto other_unit = MakeDriver(clock, "modbus",
                               "{ url = \"" + url +
                                   "\", unit = 8, register = 20, "
                                   "timeout = \"200ms\" }",
                               "other");
  REQUIRE(other_unit.ok());

  StatusOr<double> v = (*temp)->Sample(0);
  INFO(v.status().message());
  REQUIRE(v.ok());
  CHECK(*v == 21.75);
  CHECK(*(*input)->Sample(0) == 65000);
  // Unit 8 is silent on this bus: a timeout, and the port still works.
  StatusOr<double> silent = (*other_unit)->Sample(0);
  REQUIRE_FALSE(silent.ok());
  CHECK(silent.status().code() == StatusCode::kTimeout);
  CHECK_THAT(silent.status().message(), Catch::Contains(name) && Catch::Contains("unit 8"));
  StatusOr<double> again = (*temp)->Sample(0);
  INFO(again.status().message());
  REQUIRE(again.ok());
  CHECK(*again == 21.75);
  CHECK(static_cast<ModbusDriver&>(**temp).link().connects() == 1);

  server.Stop();
  close(slave);
  close(master);
}

TEST_CASE("modbus RTU device that does not exist") {
  FakeClock clock;
  auto d = MakeDriver(clock, "modbus", "{ url = \"/dev/ttyNONEXISTENT9\", register = 0 }");
  REQUIRE(d.ok());
  StatusOr<double> v = (*d)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::Contains("rtu:///dev/ttyNONEXISTENT9") &&
                                       Catch::Contains("No such file or directory"));
}

TEST_CASE("modbus values are scaled by the common params through the scheduler") {
  TcpFixture f;
  f.server.SetHolding(1, {2345});
  SensorSpec spec;
  auto d = MakeDriver(f.clock, "modbus",
                      "{ url = \"" + f.url + "\", register = 1, scale = 0.1, offset = -10 }",
                      "scaled", 1000000, &spec);
  REQUIRE(d.ok());
  TestSink sink;
  Scheduler sched(f.clock, sink);
  REQUIRE(sched.Add(spec, **d).ok());
  // A blocking driver: RunDue() hands the read to a worker, and a later
  // RunDue() applies its result.
  sched.RunDue(f.clock.NowMonotonicUs());
  REQUIRE(sluice::testing::WaitUntil(
      [&] {
        sched.RunDue(f.clock.NowMonotonicUs());
        return sink.size() == 1;
      },
      10000000, 2000));
  CHECK(sink.readings()[0].value == Approx(224.5));
}

TEST_CASE("modbus params are validated with positions") {
  FakeClock clock;
  auto err = [&](const std::string& params) {
    auto d = MakeDriver(clock, "modbus", params, "v");
    REQUIRE_FALSE(d.ok());
    return d.status().message();
  };
  CHECK_THAT(err("{ register = 1 }"), Catch::Contains("param \"url\" (or \"device\") is required"));
  CHECK_THAT(err("{ url = \"tcp://h:1\" }"), Catch::Contains("param \"register\" is required"));
  CHECK_THAT(err("{ url = \"http://x\", register = 1 }"),
             Catch::StartsWith("t.toml:2:18: sensor \"v\": param \"url\" must be tcp://"));
  CHECK_THAT(err("{ url = \"tcp://h:99999\", register = 1 }"), Catch::Contains("bad port"));
  CHECK_THAT(err("{ url = \"tcp://h\", device = \"/dev/x\", register = 1 }"),
             Catch::Contains("param \"device\" cannot be given together with \"url\""));
  CHECK_THAT(err("{ url = \"tcp://h\", register = 1, baud = 9600 }"),
             Catch::Contains("param \"baud\" applies to RTU devices only"));
  CHECK_THAT(err("{ url = \"rtu:///dev/x?baud=9600\", register = 1, baud = 9600 }"),
             Catch::Contains("param \"baud\" is already given in \"url\""));
  CHECK_THAT(err("{ url = \"/dev/x\", register = 1, baud = 9601 }"),
             Catch::Contains("standard rate"));
  CHECK_THAT(err("{ url = \"rtu:///dev/x?parity=Q\", register = 1 }"),
             Catch::Contains("parity must be"));
  CHECK_THAT(err("{ url = \"tcp://h\", register = 70000 }"),
             Catch::Contains("param \"register\" must be between 0 and 65535"));
  CHECK_THAT(err("{ url = \"tcp://h\", register = 65535, type = \"int32\" }"),
             Catch::Contains("second register"));
  CHECK_THAT(err("{ url = \"tcp://h\", register = 1, unit = 300 }"),
             Catch::Contains("param \"unit\" must be between 0 and 255"));
  CHECK_THAT(err("{ url = \"/dev/ttyS0\", register = 1, unit = 0 }"),
             Catch::Contains("param \"unit\" must be between 1 and 247 on an RTU bus"));
  CHECK_THAT(
      err("{ url = \"tcp://h\", register = 1, type = \"int64\" }"),
      Catch::Contains("param \"type\" must be one of int16, uint16, int32, uint32, float32"));
  CHECK_THAT(err("{ url = \"tcp://h\", register = 1, word_order = \"little\" }"),
             Catch::Contains("applies to 32-bit types only"));
  CHECK_THAT(err("{ url = \"tcp://h\", register = 1, kind = \"coil\", type = \"int16\" }"),
             Catch::Contains("param \"type\" applies to registers only"));
  CHECK_THAT(err("{ url = \"tcp://h\", register = 1, kind = \"input\", table = \"input\" }"),
             Catch::Contains("param \"table\" cannot be given together with \"kind\""));
  CHECK_THAT(err("{ url = \"tcp://h\", register = 1, kind = \"register\" }"),
             Catch::Contains("must be one of holding, input, coil, discrete"));
  CHECK_THAT(err("{ url = \"tcp://h\", register = 1, colour = \"red\" }"),
             Catch::Contains("unknown param \"colour\" for driver \"modbus\""));
  CHECK_THAT(err("{ url = \"tcp://h\", register = 1, reconnect_max = \"1ms\" }"),
             Catch::Contains("reconnect_max\" must be >= reconnect_min"));

  // One device, two serial settings: the second sensor is refused.
  auto first = MakeDriver(clock, "modbus", "{ url = \"/dev/ttyX9\", register = 1 }", "first");
  REQUIRE(first.ok());
  CHECK_THAT(err("{ url = \"rtu:///dev/ttyX9?baud=19200\", register = 2 }"),
             Catch::Contains("already used by sensor \"first\""));
}

TEST_CASE("modbus codec round-trips every type and order") {
  for (ModbusType t : {ModbusType::kInt16, ModbusType::kUint16, ModbusType::kInt32,
                       ModbusType::kUint32, ModbusType::kFloat32}) {
    for (WordOrder w : {WordOrder::kBig, WordOrder::kLittle}) {
      for (WordOrder b : {WordOrder::kBig, WordOrder::kLittle}) {
        ModbusFormat f{t, w, b};
        double v = t == ModbusType::kUint16   ? 65535
                   : t == ModbusType::kInt16  ? -32768
                   : t == ModbusType::kUint32 ? 4294967295.0
                   : t == ModbusType::kInt32  ? -2147483648.0
                                              : 3.5e-3;
        uint16_t regs[2] = {0, 0};
        EncodeModbusRegisters(v, f, regs);
        CHECK(DecodeModbusRegisters(regs, f) == Approx(v));
      }
    }
  }
}

TEST_CASE("modbus RTU port that goes away is reported and retried with backoff") {
  int master = -1, slave = -1;
  char name[128];
  REQUIRE(openpty(&master, &slave, name, nullptr, nullptr) == 0);
  termios t{};
  REQUIRE(tcgetattr(slave, &t) == 0);
  cfmakeraw(&t);
  REQUIRE(tcsetattr(slave, TCSANOW, &t) == 0);
  ModbusTestServer server(master, 1);
  std::string err;
  REQUIRE(server.Start(&err));
  server.SetHolding(0, {77});
  FakeClock clock;
  auto d = MakeDriver(clock, "modbus",
                      std::string("{ device = \"") + name +
                          "\", register = 0, timeout = \"400ms\", reconnect_min = \"1s\" }");
  REQUIRE(d.ok());
  REQUIRE(*(*d)->Sample(0) == 77);
  // Unplug: the pty disappears (both ends closed).
  server.Stop();
  close(slave);
  close(master);
  StatusOr<double> gone = (*d)->Sample(0);
  REQUIRE_FALSE(gone.ok());
  CHECK_THAT(gone.status().message(), Catch::Contains(name));
  bool backing_off = false;
  for (int i = 0; i < 5 && !backing_off; ++i) {
    StatusOr<double> v = (*d)->Sample(0);
    REQUIRE_FALSE(v.ok());
    backing_off = v.status().message().find("next attempt in") != std::string::npos;
  }
  // Unless another process got the same pty number meanwhile (parallel
  // tests), reopening fails and the shared backoff holds further attempts.
  if (access(name, F_OK) != 0) CHECK(backing_off);
}

TEST_CASE("modbus TCP read round trip over loopback", "[.][rate]") {
  TcpFixture f;
  f.server.SetHolding(0, {1, 2});
  auto d = f.Make("register = 0, type = \"uint32\"");
  const int kReads = 5000;
  int64_t t0 = testing::MonoNowUs();
  for (int i = 0; i < kReads; ++i) REQUIRE(d->Sample(0).ok());
  int64_t us = testing::MonoNowUs() - t0;
  WARN("modbus TCP loopback: " << kReads << " reads in " << us / 1000 << " ms, "
                               << double(us) / kReads << " us per read");
}
