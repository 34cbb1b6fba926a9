// The i2c driver against simulated chips implementing the datasheets'
// register maps, and the real i2c-dev adapter's error paths.
#include "drivers/i2c/i2c.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "common/clock.h"
#include "drivers/i2c/bosch.h"
#include "drivers/i2c/sht3x.h"
#include "make_driver.h"
#include "sim_i2c.h"
#include "tests/support/support.h"

using namespace sluice;
using sluice::testing::MakeDriver;
using sluice::testing::SimBosch;
using sluice::testing::SimBoschCalib;
using sluice::testing::SimI2cBus;
using sluice::testing::SimSht3x;

namespace {

constexpr int64_t kSec = 1000000;

// BMP280 datasheet 3.12: the compensation worked example.
constexpr int32_t kAdcT = 519888;
constexpr int32_t kAdcP = 415148;

struct Rig {
  SimI2cBus bus;
  FakeClock clock;
  SharedDevices devices;
  std::shared_ptr<I2cChip> Chip(I2cChipKind kind, uint8_t address, const std::string& key) {
    auto chip = AcquireI2cChip(
        devices, key, address, kind, [this] { return bus.Open(); }, clock);
    REQUIRE(chip.ok());
    return *chip;
  }
};

// The BME280 datasheet's floating-point humidity formula (8.1), as an
// independent check of the integer one.
double HumidityDouble(int32_t adc_h, const SimBoschCalib& c, int32_t t_fine) {
  double h = t_fine - 76800.0;
  h = (adc_h - (c.H4 * 64.0 + c.H5 / 16384.0 * h)) *
      (c.H2 / 65536.0 * (1.0 + c.H6 / 67108864.0 * h * (1.0 + c.H3 / 67108864.0 * h)));
  h = h * (1.0 - c.H1 * h / 524288.0);
  return h < 0 ? 0 : h > 100 ? 100 : h;
}

}  // namespace

TEST_CASE("Bosch compensation matches the BMP280 datasheet's worked example") {
  SimBosch sim(kBmp280ChipId, SimBoschCalib{});
  // The calibration as the chip stores it, parsed by the driver.
  uint8_t r[26];
  uint8_t reg = 0x88;
  sim.OnWrite(&reg, 1);
  sim.OnRead(r, sizeof r);
  BoschCalibration c = ParseBoschCalibration(r, nullptr);
  CHECK(c.T1 == 27504);
  CHECK(c.T3 == -1000);
  CHECK(c.P2 == -10685);
  CHECK(c.P9 == 6000);
  int32_t t_fine = 0;
  CHECK(BoschCompensateT(kAdcT, c, &t_fine) == 2508);  // 25.08 degC
  CHECK(t_fine == 128422);
  uint32_t p = BoschCompensateP(kAdcP, c, t_fine);
  CHECK(p / 256 == 100653);  // Pa
  CHECK(p / 256.0 == Approx(100653.27).margin(0.01));
}

TEST_CASE("BME280 humidity calibration packing and compensation") {
  SimBoschCalib calib;
  calib.H4 = 300;
  calib.H5 = -20;  // a negative 12-bit value split across 0xE5/0xE6
  SimBosch sim(kBme280ChipId, calib);
  uint8_t r[26], h[7];
  uint8_t reg = 0x88;
  sim.OnWrite(&reg, 1);
  sim.OnRead(r, sizeof r);
  reg = 0xE1;
  sim.OnWrite(&reg, 1);
  sim.OnRead(h, sizeof h);
  BoschCalibration c = ParseBoschCalibration(r, h);
  CHECK(c.H1 == 75);
  CHECK(c.H2 == 362);
  CHECK(c.H4 == 300);
  CHECK(c.H5 == -20);
  CHECK(c.H6 == 30);
  int32_t t_fine = 0;
  (void)BoschCompensateT(kAdcT, c, &t_fine);
  for (int32_t adc_h : {20000, 26000, 30000, 36000}) {
    double got = BoschCompensateH(adc_h, c, t_fine) / 1024.0;
    INFO("adc_H " << adc_h);
    CHECK(got == Approx(HumidityDouble(adc_h, calib, t_fine)).margin(0.05));
  }
  CHECK(BoschCompensateH(0, c, t_fine) == 0);           // clamped at 0 %
  CHECK(BoschCompensateH(65535, c, t_fine) == 102400);  // and at 100 %
}

TEST_CASE("i2c BMP280 through the driver gives the datasheet's values") {
  Rig rig;
  SimBosch sim(kBmp280ChipId, SimBoschCalib{});
  sim.SetAdc(kAdcT, kAdcP, 0);
  sim.SetBusyPolls(2);
  rig.bus.Attach(0x77, &sim);
  auto chip = rig.Chip(I2cChipKind::kBmp280, 0x77, "bmp-a");
  I2cDriver t(chip, ClimateQuantity::kTemperature, kSec);
  I2cDriver p(chip, ClimateQuantity::kPressure, kSec);
  CHECK(t.blocking());
  StatusOr<double> tv = t.Sample(0);
  INFO(tv.status().message());
  REQUIRE(tv.ok());
  CHECK(*tv == Approx(25.08));
  CHECK(*p.Sample(0) == Approx(100653.27).margin(0.01));
  CHECK(sim.measurements() == 1);  // both quantities from one measurement
}

TEST_CASE("i2c BME280: three quantities share one measurement per interval", "[tsan]") {
  Rig rig;
  SimBoschCalib calib;
  SimBosch sim(kBme280ChipId, calib);
  sim.SetAdc(kAdcT, kAdcP, 30000);
  rig.bus.Attach(0x76, &sim);
  auto chip = rig.Chip(I2cChipKind::kBme280, 0x76, "bme-a");
  I2cDriver t(chip, ClimateQuantity::kTemperature, 10 * kSec);
  I2cDriver p(chip, ClimateQuantity::kPressure, 10 * kSec);
  I2cDriver h(chip, ClimateQuantity::kHumidity, 10 * kSec);
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (Driver* d : {static_cast<Driver*>(&t), static_cast<Driver*>(&p), static_cast<Driver*>(&h)}) {
    threads.emplace_back([d, &good] {
      if (d->Sample(0).ok()) ++good;
    });
  }
  for (auto& th : threads) th.join();
  CHECK(good == 3);
  CHECK(sim.measurements() == 1);
  int32_t t_fine = 128422;
  CHECK(*t.Sample(0) == Approx(25.08));
  CHECK(*p.Sample(0) == Approx(100653.27).margin(0.01));
  CHECK(*h.Sample(0) == Approx(HumidityDouble(30000, calib, t_fine)).margin(0.05));
  CHECK(sim.measurements() == 1);
  rig.clock.Advance(10 * kSec);
  sim.SetAdc(kAdcT + 16000, kAdcP, 30000);  // warmer
  CHECK(*t.Sample(0) > 25.08 + 1);
  CHECK(sim.measurements() == 2);
}

TEST_CASE("i2c Bosch: wrong chip id, missing chip, bus errors and recovery") {
  Rig rig;
  SimBosch bmp(kBmp280ChipId, SimBoschCalib{});
  bmp.SetAdc(kAdcT, kAdcP, 0);
  rig.bus.Attach(0x76, &bmp);

  I2cDriver as_bme(rig.Chip(I2cChipKind::kBme280, 0x76, "bus-b"), ClimateQuantity::kTemperature,
                   kSec);
  StatusOr<double> wrong = as_bme.Sample(0);
  REQUIRE_FALSE(wrong.ok());
  CHECK_THAT(wrong.status().message(),
             Catch::Contains("i2c sim-i2c address 0x76: chip id 0x58 (a BMP280), expected 0x60"));

  I2cDriver absent(rig.Chip(I2cChipKind::kBmp280, 0x77, "bus-b"), ClimateQuantity::kTemperature,
                   kSec);
  StatusOr<double> none = absent.Sample(0);
  REQUIRE_FALSE(none.ok());
  CHECK_THAT(none.status().message(), Catch::Contains("0x77") && Catch::Contains("no acknowledge"));

  I2cDriver ok(rig.Chip(I2cChipKind::kBmp280, 0x76, "bus-c"), ClimateQuantity::kTemperature, kSec);
  REQUIRE(ok.Sample(0).ok());
  int opens = rig.bus.opens();
  rig.clock.Advance(kSec);
  rig.bus.FailNext(1);
  StatusOr<double> failed = ok.Sample(0);
  REQUIRE_FALSE(failed.ok());
  CHECK_THAT(failed.status().message(), Catch::Contains("Input/output error"));
  StatusOr<double> back = ok.Sample(0);  // reopened, chip id and calibration read again
  REQUIRE(back.ok());
  CHECK(*back == Approx(25.08));
  CHECK(rig.bus.opens() == opens + 1);
}

TEST_CASE("Sensirion CRC-8 matches the datasheet example") {
  const uint8_t beef[2] = {0xBE, 0xEF};
  CHECK(Sht3xCrc(beef, 2) == 0x92);
  CHECK(Sht3xTemperature(0) == -45.0);
  CHECK(Sht3xTemperature(65535) == 130.0);
  CHECK(Sht3xHumidity(65535) == 100.0);
}

TEST_CASE("i2c SHT3x: single shot with CRC checks") {
  Rig rig;
  SimSht3x sim;
  sim.SetRaw(0x6666, 0x8000);
  sim.SetNackReads(2);  // still converting for the first two reads
  rig.bus.Attach(0x44, &sim);
  auto chip = rig.Chip(I2cChipKind::kSht3x, 0x44, "sht-a");
  I2cDriver t(chip, ClimateQuantity::kTemperature, kSec);
  I2cDriver h(chip, ClimateQuantity::kHumidity, kSec);
  StatusOr<double> tv = t.Sample(0);
  INFO(tv.status().message());
  REQUIRE(tv.ok());
  CHECK(*tv == Approx(-45.0 + 175.0 * 0x6666 / 65535.0));
  CHECK(*h.Sample(0) == Approx(100.0 * 0x8000 / 65535.0));
  CHECK(sim.measurements() == 1);

  for (int word : {0, 1}) {
    rig.clock.Advance(kSec);
    sim.SetCorruptCrc(word);
    StatusOr<double> bad = h.Sample(0);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().code() == StatusCode::kCorruption);
    CHECK_THAT(bad.status().message(),
               Catch::Contains(word == 0 ? "CRC mismatch on the temperature word"
                                         : "CRC mismatch on the humidity word"));
  }
  sim.SetCorruptCrc(-1);
  rig.clock.Advance(kSec);
  CHECK(t.Sample(0).ok());
}

TEST_CASE("i2c real adapter: missing bus and non-i2c files are clear errors") {
  StatusOr<std::unique_ptr<I2cBus>> missing = OpenLinuxI2cBus("/dev/i2c-250");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.status().message(),
             Catch::Contains("cannot open /dev/i2c-250: No such file or directory"));
  sluice::testing::TempDir dir;
  std::string file = dir.Join("not-a-bus");
  REQUIRE(sluice::testing::WriteFile(file, "x"));
  StatusOr<std::unique_ptr<I2cBus>> notbus = OpenLinuxI2cBus(file);
  REQUIRE_FALSE(notbus.ok());
  CHECK_THAT(notbus.status().message(), Catch::Contains("is not an i2c-dev bus"));

  // Through the registry: config is fine, sampling reports the bus.
  FakeClock clock;
  auto d = MakeDriver(clock, "i2c", "{ bus = 250, chip = \"bme280\", quantity = \"humidity\" }");
  INFO(d.status().message());
  REQUIRE(d.ok());
  CHECK((*d)->blocking());
  StatusOr<double> v = (*d)->Sample(0);
  REQUIRE_FALSE(v.ok());
  CHECK_THAT(v.status().message(), Catch::Contains("/dev/i2c-250"));
}

TEST_CASE("i2c params are validated with positions") {
  FakeClock clock;
  auto err = [&](const std::string& params) {
    auto d = MakeDriver(clock, "i2c", params, "v");
    REQUIRE_FALSE(d.ok());
    return d.status().message();
  };
  CHECK_THAT(err("{ bus = 1 }"), Catch::Contains("param \"chip\" is required"));
  CHECK_THAT(err("{ chip = \"dht22\" }"),
             Catch::StartsWith("t.toml:2:19: sensor \"v\": param \"chip\" must be one of bme280, "
                               "bmp280, sht3x"));
  CHECK_THAT(err("{ chip = \"sht3x\", quantity = \"pressure\" }"),
             Catch::Contains("pressure needs a bme280 or bmp280"));
  CHECK_THAT(err("{ chip = \"bmp280\", quantity = \"humidity\" }"),
             Catch::Contains("humidity needs a bme280 or sht3x"));
  CHECK_THAT(err("{ chip = \"bme280\", address = 0x80 }"),
             Catch::Contains("param \"address\" must be between 3 and 119"));
  CHECK_THAT(err("{ chip = \"bme280\", bus = \"i2c-1\" }"),
             Catch::Contains("param \"bus\" must be a bus number or an absolute path"));
  CHECK_THAT(err("{ chip = \"bme280\", bus = true }"),
             Catch::Contains("param \"bus\" must be a bus number or a /dev/i2c-N path"));
  CHECK_THAT(err("{ chip = \"bme280\", quantity = \"altitude\" }"),
             Catch::Contains("must be one of temperature, pressure, humidity"));
  CHECK_THAT(err("{ chip = \"bme280\", mode = \"normal\" }"),
             Catch::Contains("unknown param \"mode\" for driver \"i2c\""));
  auto first = MakeDriver(clock, "i2c", "{ bus = \"/dev/i2c-200\", chip = \"bme280\" }", "a");
  REQUIRE(first.ok());
  CHECK_THAT(err("{ bus = 200, chip = \"bmp280\" }"),
             Catch::Contains("another sensor reads a different chip"));
  auto same =
      MakeDriver(clock, "i2c", "{ bus = 200, chip = \"bme280\", quantity = \"pressure\" }", "b");
  CHECK(same.ok());
}
