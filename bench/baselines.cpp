// Same-run baselines for `sluice-bench drain`: plain Paho QoS 1 publishing,
// and a Mosquitto bridge draining a queued backlog to the same broker A.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "bench/drain.h"
#include "bench/util.h"

namespace sluice {
namespace bench {
namespace {

// Parses the worker's "publish sent=.. acked=.. seconds=.. ok=.." line.
double WorkerSeconds(const std::string& log) {
  size_t p = log.find("seconds=");
  return p == std::string::npos ? 0 : std::atof(log.c_str() + p + 8);
}

bool RunPublisher(const std::string& url, uint64_t n, size_t size, size_t window,
                  const std::string& topic, const std::string& log, Child* child,
                  std::string* error) {
  return child->Start({SelfExe(), "_publish", url, std::to_string(n), std::to_string(size),
                       std::to_string(window), topic},
                      log, error);
}

}  // namespace

bool WaitDrained(Counter& counter, Child* child, pid_t watch, int64_t timeout_us,
                 int64_t* peak_kib, std::string* error) {
  const int64_t deadline = NowUs() + timeout_us;
  for (int i = 0; i < 1000000; ++i) {
    if (counter.WaitComplete(100000, 30000000)) return true;
    if (watch > 0) *peak_kib = std::max(*peak_kib, ProcStatusKiB(watch, "VmHWM"));
    if (child != nullptr && child->running() && child->Wait(0) && !child->Succeeded()) {
      *error = "drainer exited early (" + DescribeStatus(child->status()) + ")";
      return counter.WaitComplete(2000000, 2000000);
    }
    if (NowUs() >= deadline) {
      *error = "timed out";
      return false;
    }
    CountResult r = counter.Result();
    if (r.last_us != 0 && NowUs() - r.last_us > 30000000) {
      *error = "no arrival for 30 s";
      return false;
    }
  }
  *error = "poll bound reached";
  return false;
}

DrainFigure RunPahoBaseline(const DrainEnv& env, int run) {
  DrainFigure f;
  f.events = env.n;
  const std::string topic = "sluice/bench/pub";
  Counter::Options co;
  co.url = env.a->url();
  co.client_id = "bench-count-paho-" + std::to_string(run);
  co.filter = topic;
  co.kind = PayloadKind::kJson;
  co.qos = env.sub_qos;
  co.expected = env.n;
  Counter counter(co);
  if (!counter.Start(true, 10000000, &f.error)) return f;
  const std::string log = env.root + "/paho-" + std::to_string(run) + ".log";
  Child pub;
  const double self0 = SelfCpuSeconds(), a0 = ProcCpuSeconds(env.a->pid());
  const int64_t t0 = NowUs();
  if (!RunPublisher(env.a->url(), env.n, env.json_size, env.window, topic, log, &pub, &f.error)) {
    return f;
  }
  int64_t peak = 0;
  bool done = WaitDrained(counter, &pub, pub.pid(), env.timeout_us, &peak, &f.error);
  f.subscriber_cpu_s = SelfCpuSeconds() - self0;
  f.broker_cpu_s = ProcCpuSeconds(env.a->pid()) - a0;
  if (!pub.Wait(20000000)) pub.Terminate(1000000);
  counter.Stop();
  f.count = counter.Result();
  f.messages = f.count.messages;
  f.seconds = static_cast<double>((done ? f.count.complete_us : f.count.last_us) - t0) / 1e6;
  f.first_arrival_s = static_cast<double>(f.count.first_us - t0) / 1e6;
  f.drainer_cpu_s = pub.CpuSeconds();
  f.drainer_peak_rss_kib = pub.MaxRssKiB();
  f.extra_s = WorkerSeconds(ReadFile(log));
  f.ok = done && f.count.distinct == env.n;
  if (!pub.Succeeded() && f.error.empty()) f.error = "publisher: " + ReadFile(log);
  return f;
}

DrainFigure RunBridgeBaseline(const DrainEnv& env, int run) {
  DrainFigure f;
  f.events = env.bridge_n;
  const std::string id = "bench-count-bridge-" + std::to_string(run);
  // 1. A persistent session on A for the counting subscriber, so that what
  //    the bridge forwards before the subscriber reconnects is queued for it.
  {
    Counter::Options co;
    co.url = env.a->url();
    co.client_id = id;
    co.filter = "sluice/#";
    co.clean_session = false;
    co.ignore_topic = "sluice/bench/status";
    co.qos = env.sub_qos;
    Counter setup(co);
    if (!setup.Start(true, 10000000, &f.error)) return f;
    setup.Stop();
  }
  // 2. A goes away; B is started with the bridge and fills its queue.
  env.a->Stop();
  const std::string bdir = env.root + "/bridge-" + std::to_string(run);
  RemoveRecursively(bdir);
  if (::mkdir(bdir.c_str(), 0755) != 0) {
    f.error = "mkdir " + bdir;
    return f;
  }
  Broker b("B", bdir);
  std::string conf;
  conf += "persistence true\npersistence_location " + bdir + "/\n";
  conf += "autosave_interval " + std::to_string(env.bridge_autosave) + "\n";
  conf += "connection bench-bridge\naddress 127.0.0.1:" + std::to_string(env.a->port()) + "\n";
  conf += "topic sluice/# out 1\ncleansession false\nrestart_timeout 1 1\n";
  conf += "bridge_protocol_version mqttv311\n";
  std::string error;
  if (!b.Start(conf, &error)) {
    f.error = error;
    return f;
  }
  Child pub;
  const std::string log = bdir + "/publisher.log";
  const int64_t l0 = NowUs();
  if (!RunPublisher(b.url(), env.bridge_n, env.json_size, env.window, "sluice/bench/bridge", log,
                    &pub, &f.error)) {
    return f;
  }
  if (!pub.Wait(env.timeout_us) || !pub.Succeeded()) {
    pub.Terminate(1000000);
    f.error = "loading B: " + ReadFile(log);
    return f;
  }
  f.extra_s = static_cast<double>(NowUs() - l0) / 1e6;
  f.extra_kib = ProcStatusKiB(b.pid(), "VmRSS");
  // 3. A starts; the bridge reconnects within restart_timeout and drains.
  Counter::Options co;
  co.url = env.a->url();
  co.client_id = id;
  co.filter = "sluice/#";
  co.clean_session = false;
  co.ignore_topic = "sluice/bench/status";
  co.expected = env.bridge_n;
  Counter counter(co);
  const double b0 = ProcCpuSeconds(b.pid()), self0 = SelfCpuSeconds();
  const int64_t t0 = NowUs();
  if (!env.a->Start(ATargetConfig(*env.a), &f.error)) {
    return f;
  }
  const double a0 = ProcCpuSeconds(env.a->pid());
  if (!counter.Start(false, 10000000, &f.error)) return f;
  int64_t peak = ProcStatusKiB(b.pid(), "VmHWM");
  bool done = WaitDrained(counter, nullptr, b.pid(), env.timeout_us, &peak, &f.error);
  f.drainer_peak_rss_kib = std::max(peak, ProcStatusKiB(b.pid(), "VmHWM"));
  f.drainer_cpu_s = ProcCpuSeconds(b.pid()) - b0;
  f.broker_cpu_s = ProcCpuSeconds(env.a->pid()) - a0;
  f.subscriber_cpu_s = SelfCpuSeconds() - self0;
  counter.Stop();
  b.Stop();
  f.count = counter.Result();
  f.messages = f.count.messages;
  f.seconds = static_cast<double>((done ? f.count.complete_us : f.count.last_us) - t0) / 1e6;
  f.first_arrival_s = static_cast<double>(f.count.first_us - t0) / 1e6;
  f.ok = done && f.count.distinct == env.bridge_n;
  return f;
}

}  // namespace bench
}  // namespace sluice
