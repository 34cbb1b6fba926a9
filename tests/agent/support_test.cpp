// Checks the shared test helpers themselves against real processes.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/mosquitto_broker.h"
#include "tests/support/process.h"
#include "tests/support/subscriber.h"
#include "tests/support/support.h"
#include "tests/support/tcp_proxy.h"

namespace sluice {
namespace testing {
namespace {

TEST_CASE("TempDir is created and removed recursively", "[support]") {
  std::string path;
  {
    TempDir dir;
    path = dir.path();
    REQUIRE(WriteFile(dir.Join("a"), "x"));
    REQUIRE(::mkdir(dir.Join("sub").c_str(), 0755) == 0);
    REQUIRE(WriteFile(dir.Join("sub/b"), "y"));
    CHECK(ReadFile(dir.Join("sub/b")) == "y");
  }
  CHECK(::access(path.c_str(), F_OK) != 0);
}

TEST_CASE("Process runs, reports exit status, is killed and reaped", "[support]") {
  TempDir dir;
  Process p;
  Process::Options o;
  o.argv = {"/bin/sh", "-c", "echo out; echo err >&2; echo $FOO; exit 3"};
  o.extra_env = {"FOO=bar"};
  o.stdout_path = dir.Join("out");
  o.stderr_path = dir.Join("err");
  REQUIRE(p.Start(o));
  auto st = p.Wait(10000000);
  REQUIRE(st);
  CHECK(WIFEXITED(*st));
  CHECK(WEXITSTATUS(*st) == 3);
  CHECK(ReadFile(dir.Join("out")) == "out\nbar\n");
  CHECK(ReadFile(dir.Join("err")) == "err\n");

  Process sleeper;
  o.argv = {"/bin/sleep", "30"};
  REQUIRE(sleeper.Start(o));
  CHECK(!sleeper.Wait(50000));
  sleeper.Kill(SIGKILL);
  auto st2 = sleeper.Wait(10000000);
  REQUIRE(st2);
  CHECK(DescribeWaitStatus(*st2) == "signal 9");
  CHECK(!sleeper.running());
}

TEST_CASE("Mosquitto, Subscriber and TcpProxy work together", "[support]") {
  MosquittoBroker broker;
  std::string err;
  REQUIRE(broker.Start(&err));
  INFO(err);
  Subscriber sub(broker.url(), "t/#");
  REQUIRE(sub.Start(&err));

  TcpProxy proxy(broker.port());
  REQUIRE(proxy.Start());
  REQUIRE(PortAcceptsConnections(proxy.port()));

  Process pub;
  Process::Options o;
  o.argv = {"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(proxy.port()),
            "-q", "1", "-t", "t/a", "-m", "hello"};
  REQUIRE(pub.Start(o));
  auto st = pub.Wait(10000000);
  REQUIRE(st);
  CHECK(WEXITSTATUS(*st) == 0);
  REQUIRE(sub.WaitForCount(1, 5000000));
  CHECK(sub.Messages()[0].topic == "t/a");
  CHECK(sub.Messages()[0].payload == "hello");

  proxy.Cut();
  CHECK(!PortAcceptsConnections(proxy.port()));
  REQUIRE(proxy.Restore());
  CHECK(PortAcceptsConnections(proxy.port()));

  const int port = broker.port();
  REQUIRE(broker.Restart(&err));
  CHECK(broker.port() == port);
  broker.Stop();
  CHECK(!broker.running());
  CHECK(!PortAcceptsConnections(port));
}

}  // namespace
}  // namespace testing
}  // namespace sluice
