// `serial` driver over real pseudo-terminal pairs (openpty): the test writes
// lines on the master side, the driver reads the slave by path.
#include "drivers/serial.h"

#include <fcntl.h>
#include <pty.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <string>

#include "common/clock.h"
#include "make_driver.h"
#include "tests/support/support.h"

using namespace sluice;
using sluice::testing::Quote;
using sluice::testing::TempDir;
using sluice::testing::WaitUntil;

namespace {

// One pseudo-terminal pair; the test keeps the master.
class Pty {
 public:
  Pty() {
    int s = -1;
    REQUIRE(openpty(&master_, &s, nullptr, nullptr, nullptr) == 0);
    char name[128];
    REQUIRE(ptsname_r(master_, name, sizeof name) == 0);
    slave_ = name;
    close(s);  // the driver opens the slave by path
  }
  ~Pty() { Close(); }
  const std::string& slave() const { return slave_; }
  void Write(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = write(master_, data.data() + off, data.size() - off);
      REQUIRE((n > 0 || errno == EINTR));
      if (n > 0) off += static_cast<size_t>(n);
    }
  }
  // The device disappears (like a USB adapter pulled out).
  void Close() {
    if (master_ >= 0) close(master_);
    master_ = -1;
  }

 private:
  int master_ = -1;
  std::string slave_;
};

std::unique_ptr<Driver> MustMake(const std::string& params, const std::string& name = "tty") {
  static FakeClock clock;
  StatusOr<std::unique_ptr<Driver>> d = sluice::testing::MakeDriver(clock, "serial", params, name);
  INFO(d.status().ToString());
  REQUIRE(d.ok());
  return std::move(*d);
}

SerialDriver& Serial(std::unique_ptr<Driver>& d) { return static_cast<SerialDriver&>(*d); }

// Starts the reader and waits until it opened the device `opens` times.
void WaitOpen(std::unique_ptr<Driver>& d, uint64_t opens = 1) {
  SerialPort& port = Serial(d).port();
  port.EnsureStarted();
  INFO(port.stats().last_error);
  REQUIRE(
      WaitUntil([&] { return port.stats().connected && port.stats().opens >= opens; }, 10000000));
}

void WaitLines(std::unique_ptr<Driver>& d, uint64_t lines) {
  SerialPort& port = Serial(d).port();
  REQUIRE(WaitUntil([&] { return port.stats().lines >= lines; }, 10000000));
}

std::string TtyParams(const std::string& device, const std::string& more = "",
                      const std::string& timeout = "2s") {
  return "{ device = " + Quote(device) + ", timeout = \"" + timeout + "\"" +
         (more.empty() ? "" : ", " + more) + " }";
}

}  // namespace

TEST_CASE("line extraction: whole line, CSV field, regex, prefix") {
  LineExtractor whole;
  CHECK(*whole.Extract(" 21.5 ") == 21.5);
  CHECK_THAT(whole.Extract("abc").status().message(),
             Catch::Equals("line \"abc\": not a number: \"abc\""));

  LineExtractor csv;
  csv.field = 2;
  CHECK(*csv.Extract("T,21.5, 40 ,x") == 40);
  CHECK_THAT(csv.Extract("T,21.5").status().message(), Catch::Contains("has 2 fields, no field 2"));
  csv.separator = "; ";
  CHECK(*csv.Extract("a; b; 7") == 7);
  csv.field = 0;
  CHECK(*csv.Extract("3; b") == 3);

  LineExtractor re;
  re.regex.emplace("T=([-0-9.]+)C");
  CHECK(*re.Extract("T=-4.5C H=40%") == -4.5);
  CHECK(re.Extract("H=40%").status().code() == StatusCode::kNotFound);
  re.regex.emplace("[0-9]+");  // no group: the whole match
  CHECK(*re.Extract("id 42 x") == 42);
  re.regex.emplace("v=(x)?([0-9]+)");
  CHECK_THAT(re.Extract("v=5").status().message(), Catch::Contains("group matched nothing"));

  LineExtractor pre;
  pre.prefix = "$T";
  pre.field = 1;
  CHECK(pre.Extract("$H,40").status().code() == StatusCode::kNotFound);
  CHECK(*pre.Extract("$T,21") == 21);
}

TEST_CASE("serial reads the newest line since the last sample") {
  Pty pty;
  auto d = MustMake(TtyParams(pty.slave(), "", "400ms"));
  CHECK(d->polled());
  CHECK(d->blocking());
  CHECK(Serial(d).wait_us() == 200000);
  WaitOpen(d);
  pty.Write("tail of an earlier line\n12.5\n");  // the first line is discarded
  StatusOr<double> v = d->Sample(0);
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  CHECK(*v == 12.5);

  pty.Write("1\r\n\n2\n3\n");
  WaitLines(d, 4);
  CHECK(*d->Sample(0) == 3);

  Status st = d->Sample(0).status();  // nothing new
  CHECK(st.code() == StatusCode::kUnavailable);
  CHECK_THAT(st.message(), Catch::Equals("no data from " + pty.slave() + " in 200.0ms"));
}

TEST_CASE("serial joins partial lines") {
  Pty pty;
  auto d = MustMake(TtyParams(pty.slave(), "", "400ms"));
  WaitOpen(d);
  pty.Write("x\n21.");
  CHECK_THAT(d->Sample(0).status().message(), Catch::Contains("no data"));
  pty.Write("5\n");
  CHECK(*d->Sample(0) == 21.5);
}

TEST_CASE("serial CSV fields: two sensors share one device and one line") {
  Pty pty;
  auto temp = MustMake(TtyParams(pty.slave(), "field = 1"), "temp");
  auto hum = MustMake(TtyParams(pty.slave(), "field = 2"), "hum");
  CHECK(&Serial(temp).port() == &Serial(hum).port());
  WaitOpen(temp);
  pty.Write("skip\nT,21.5,40\n");
  CHECK(*temp->Sample(0) == 21.5);
  CHECK(*hum->Sample(0) == 40);

  Pty other;
  auto semi = MustMake(TtyParams(other.slave(), "field = 0, separator = \";\", prefix = \"7\""));
  WaitOpen(semi);
  other.Write("skip\n8;1\n7.5;2\n");
  CHECK(*semi->Sample(0) == 7.5);
}

TEST_CASE("serial regex extraction ignores lines it does not match") {
  Pty pty;
  auto d = MustMake(TtyParams(pty.slave(), "regex = 'T=([-0-9.]+)C'", "400ms"));
  WaitOpen(d);
  pty.Write("skip\nboot v1.2\nT=-3.25C H=40%\n");
  CHECK(*d->Sample(0) == -3.25);
  pty.Write("hello\n");
  WaitLines(d, 3);
  CHECK_THAT(d->Sample(0).status().message(), Catch::Contains("(1 lines did not match)"));
}

TEST_CASE("serial garbage: an error unless a valid line came since the last sample") {
  Pty pty;
  auto d = MustMake(TtyParams(pty.slave(), "field = 1"));
  WaitOpen(d);
  pty.Write("skip\nT,abc\n");
  Status st = d->Sample(0).status();
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(st.message(), Catch::Equals("line \"T,abc\": not a number: \"abc\""));

  pty.Write("T,abc\nT,7\n");
  WaitLines(d, 3);
  CHECK(*d->Sample(0) == 7);
  pty.Write("T,8\nT,\x01\xff\n");  // newer garbage does not hide a valid value
  WaitLines(d, 5);
  CHECK(*d->Sample(0) == 8);
  pty.Write("T\n");
  CHECK_THAT(d->Sample(0).status().message(), Catch::Contains("has 1 fields, no field 1"));

  // An overlong line is dropped whole; the next line is read.
  pty.Write(std::string(kMaxSerialLine + 10, '9') + "\nT,9\n");
  WaitLines(d, 7);
  CHECK(*d->Sample(0) == 9);
  CHECK(Serial(d).port().stats().overlong == 1);
}

TEST_CASE("serial settings map to termios") {
  SerialSettings s;
  s.baud = 19200;
  s.parity = 'E';
  s.data_bits = 7;
  s.stop_bits = 2;
  termios t{};
  t.c_lflag = ICANON | ECHO;
  t.c_iflag = IXON | ICRNL;
  ApplySerialSettings(s, &t);
  CHECK(cfgetispeed(&t) == B19200);
  CHECK(cfgetospeed(&t) == B19200);
  CHECK((t.c_cflag & CSIZE) == CS7);
  CHECK((t.c_cflag & (PARENB | PARODD)) == PARENB);
  CHECK((t.c_cflag & CSTOPB) != 0);
  CHECK((t.c_cflag & (CLOCAL | CREAD)) == (CLOCAL | CREAD));
  CHECK((t.c_lflag & (ICANON | ECHO)) == 0);
  CHECK((t.c_iflag & (IXON | ICRNL)) == 0);
  CHECK(s.Describe() == "19200 7E2");

  s.baud = 115200;
  s.parity = 'O';
  s.data_bits = 8;
  s.stop_bits = 1;
  ApplySerialSettings(s, &t);
  CHECK(cfgetispeed(&t) == B115200);
  CHECK((t.c_cflag & CSIZE) == CS8);
  CHECK((t.c_cflag & (PARENB | PARODD)) == (PARENB | PARODD));
  CHECK((t.c_cflag & CSTOPB) == 0);
  s.parity = 'N';
  s.data_bits = 5;
  ApplySerialSettings(s, &t);
  CHECK((t.c_cflag & (PARENB | PARODD)) == 0);
  CHECK((t.c_cflag & CSIZE) == CS5);
}

// Linux ptys keep their own character format (always 8 bits, no parity), so
// on a pty only the speed, stop bits and raw mode can be seen applied.
TEST_CASE("serial applies baud, stop bits and raw mode to the device") {
  Pty pty;
  auto d = MustMake(TtyParams(pty.slave(),
                              "baud = 19200, parity = \"even\", data_bits = 7, "
                              "stop_bits = 2"));
  WaitOpen(d);
  int fd = open(pty.slave().c_str(), O_RDONLY | O_NOCTTY);
  REQUIRE(fd >= 0);
  termios t;
  REQUIRE(tcgetattr(fd, &t) == 0);
  close(fd);
  CHECK(cfgetispeed(&t) == B19200);
  CHECK(cfgetospeed(&t) == B19200);
  CHECK((t.c_cflag & CSTOPB) != 0);
  CHECK((t.c_cflag & CLOCAL) != 0);
  CHECK((t.c_lflag & (ICANON | ECHO)) == 0);
  CHECK((t.c_iflag & (IXON | ICRNL)) == 0);

  Pty fast;
  auto f = MustMake(TtyParams(fast.slave(), "baud = 115200"));
  WaitOpen(f);
  fd = open(fast.slave().c_str(), O_RDONLY | O_NOCTTY);
  REQUIRE(fd >= 0);
  REQUIRE(tcgetattr(fd, &t) == 0);
  close(fd);
  CHECK(cfgetispeed(&t) == B115200);
  CHECK((t.c_cflag & CSTOPB) == 0);
  fast.Write("skip\n6\n");
  CHECK(*f->Sample(0) == 6);
}

TEST_CASE("serial survives the device disappearing and coming back") {
  TempDir dir;
  const std::string link = dir.Join("ttyUSB0");
  auto pty = std::make_unique<Pty>();
  REQUIRE(symlink(pty->slave().c_str(), link.c_str()) == 0);
  auto d = MustMake(TtyParams(link, "", "400ms"));
  WaitOpen(d);
  pty->Write("skip\n1.5\n");
  CHECK(*d->Sample(0) == 1.5);

  // Unplug: the tty hangs up and its path goes away.
  pty.reset();
  REQUIRE(unlink(link.c_str()) == 0);
  SerialPort& port = Serial(d).port();
  REQUIRE(WaitUntil([&] { return !port.stats().connected; }, 10000000));
  Status st = d->Sample(0).status();
  CHECK_FALSE(st.ok());
  CHECK_THAT(st.message(), Catch::Contains(link));
  CHECK(WaitUntil([&] { return port.stats().last_error.find("No such file") != std::string::npos; },
                  10000000));
  CHECK_THAT(d->Sample(0).status().message(),
             Catch::Equals("open " + link + ": No such file or directory"));
  CHECK(port.stats().disconnects == 1);

  // Replug: a new tty under the same name.
  pty = std::make_unique<Pty>();
  REQUIRE(symlink(pty->slave().c_str(), link.c_str()) == 0);
  WaitOpen(d, 2);
  pty->Write("skip\n2.5\n");
  StatusOr<double> v = d->Sample(0);
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  CHECK(*v == 2.5);
}

TEST_CASE("serial: a device missing at start is opened once it appears") {
  TempDir dir;
  const std::string link = dir.Join("ttyACM0");
  auto d = MustMake(TtyParams(link));
  Status st = d->Sample(0).status();
  CHECK_THAT(st.message(), Catch::Equals("open " + link + ": No such file or directory"));
  Pty pty;
  REQUIRE(symlink(pty.slave().c_str(), link.c_str()) == 0);
  WaitOpen(d);
  pty.Write("skip\n4\n");
  CHECK(*d->Sample(0) == 4);
}

TEST_CASE("serial: a file that is not a tty is an error") {
  TempDir dir;
  const std::string path = dir.Join("plain");
  REQUIRE(sluice::testing::WriteFile(path, "1\n2\n"));
  auto d = MustMake(TtyParams(path));
  CHECK_THAT(d->Sample(0).status().message(), Catch::Contains("is not a terminal"));
}

TEST_CASE("serial config errors name FILE:LINE:COL") {
  auto err = [](const std::string& params, const std::string& name = "tty") {
    static FakeClock clock;
    StatusOr<std::unique_ptr<Driver>> d =
        sluice::testing::MakeDriver(clock, "serial", params, name);
    REQUIRE_FALSE(d.ok());
    return d.status().message();
  };
  CHECK_THAT(err("{ baud = 9600 }"), Catch::Contains("param \"device\" is required"));
  CHECK_THAT(err("{ device = \"/dev/x\", baud = 12345 }"),
             Catch::StartsWith("t.toml:2:38: sensor \"tty\": param \"baud\" must be a "
                               "standard rate"));
  CHECK_THAT(err("{ device = \"/dev/x\", baud = \"fast\" }"), Catch::Contains("integer"));
  CHECK_THAT(err("{ device = \"/dev/x\", parity = \"mark\" }"),
             Catch::Contains("must be one of none, even, odd (got \"mark\")"));
  CHECK_THAT(err("{ device = \"/dev/x\", data_bits = 9 }"),
             Catch::Contains("must be between 5 and 8"));
  CHECK_THAT(err("{ device = \"/dev/x\", stop_bits = 3 }"),
             Catch::Contains("must be between 1 and 2"));
  CHECK_THAT(err("{ device = \"/dev/x\", field = -1 }"),
             Catch::Contains("\"field\" must be between 0 and 1000"));
  CHECK_THAT(err("{ device = \"/dev/x\", regex = \"(\" }"), Catch::Contains("not a valid regex"));
  CHECK_THAT(err("{ device = \"/dev/x\", regex = \"a\", field = 1 }"),
             Catch::Contains("param \"regex\" cannot be given together with \"field\""));
  CHECK_THAT(err("{ device = \"/dev/x\", separator = \";\" }"), Catch::Contains("needs param"));
  CHECK_THAT(err("{ device = \"/dev/x\", bauds = 9600 }"),
             Catch::Contains("unknown param \"bauds\" for driver \"serial\""));

  auto first = MustMake("{ device = \"/dev/shared-x\", baud = 9600 }", "first");
  CHECK_THAT(err("{ device = \"/dev/shared-x\", baud = 19200 }", "second"),
             Catch::Contains("param \"device\" is already used by sensor \"first\" with "
                             "9600 8N1, not 19200 8N1"));
  auto same = MustMake("{ device = \"/dev/shared-x\", baud = 9600, field = 1 }", "third");
  CHECK(&Serial(first).port() == &Serial(same).port());
}
