#include "bench/util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace sluice {
namespace bench {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) {
    std::fprintf(stderr, "mkdtemp %s: %s\n", tmpl.c_str(), std::strerror(errno));
    std::abort();
  }
  path_ = buf.data();
}

TempDir::~TempDir() {
  if (!keep_) RemoveRecursively(path_);
}

bool RemoveRecursively(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT;
  bool ok = true;
  if (S_ISDIR(st.st_mode)) {
    if (DIR* d = ::opendir(path.c_str())) {
      while (struct dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        ok = RemoveRecursively(path + "/" + name) && ok;
      }
      ::closedir(d);
    }
    return ::rmdir(path.c_str()) == 0 && ok;
  }
  return ::unlink(path.c_str()) == 0 && ok;
}

bool WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  out.close();
  return static_cast<bool>(out);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      struct stat st;
      std::string p = dir + "/" + e->d_name;
      if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        total += static_cast<uint64_t>(st.st_size);
      }
    }
    ::closedir(d);
  }
  return total;
}

int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  int port = -1;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

bool PortAcceptsConnections(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

bool WaitUntil(const std::function<bool()>& pred, int64_t timeout_us, int64_t poll_us) {
  const int64_t deadline = NowUs() + timeout_us;
  for (;;) {
    if (pred()) return true;
    if (NowUs() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::microseconds(poll_us));
  }
}

Child::~Child() {
  if (pid_ > 0) Terminate(0);
}

bool Child::Start(const std::vector<std::string>& argv, const std::string& log_path,
                  std::string* error) {
  if (pid_ > 0 || argv.empty()) {
    *error = "already running or empty argv";
    return false;
  }
  int out_fd = ::open(log_path.empty() ? "/dev/null" : log_path.c_str(),
                      O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out_fd < 0 || in_fd < 0) {
    *error = std::string("open ") + log_path + ": " + std::strerror(errno);
    if (out_fd >= 0) ::close(out_fd);
    if (in_fd >= 0) ::close(in_fd);
    return false;
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    ::close(out_fd);
    ::close(in_fd);
    return false;
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    ::execve(args[0], args.data(), environ);
    _exit(127);
  }
  ::close(out_fd);
  ::close(in_fd);
  pid_ = pid;
  return true;
}

bool Child::Wait(int64_t timeout_us) {
  if (pid_ <= 0) return true;
  const int64_t deadline = NowUs() + timeout_us;
  for (;;) {
    int st = 0;
    struct rusage ru {};
    pid_t r = ::wait4(pid_, &st, WNOHANG, &ru);
    if (r == pid_) {
      status_ = st;
      rusage_ = ru;
      pid_ = -1;
      return true;
    }
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      return true;
    }
    if (NowUs() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int Child::Terminate(int64_t grace_us) {
  if (pid_ <= 0) return status_;
  ::kill(pid_, SIGTERM);
  if (!Wait(grace_us)) {
    ::kill(pid_, SIGKILL);
    Wait(10000000);
  }
  return status_;
}

bool Child::Succeeded() const { return WIFEXITED(status_) && WEXITSTATUS(status_) == 0; }

double Child::CpuSeconds() const {
  return static_cast<double>(rusage_.ru_utime.tv_sec + rusage_.ru_stime.tv_sec) +
         static_cast<double>(rusage_.ru_utime.tv_usec + rusage_.ru_stime.tv_usec) / 1e6;
}

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

int64_t ProcStatusKiB(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  for (int i = 0; i < 200 && std::getline(in, line); ++i) {
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + key.size());
  }
  return -1;
}

namespace {
double StatCpuSeconds(const std::string& path) {
  std::string s = ReadFile(path);
  size_t p = s.rfind(')');
  if (p == std::string::npos) return -1;
  std::istringstream in(s.substr(p + 2));
  std::string f;
  double ut = 0, st = 0;
  // Fields after "(comm)": state is field 3; utime and stime are 14 and 15.
  for (int i = 3; i <= 15 && (in >> f); ++i) {
    if (i == 14) ut = std::atof(f.c_str());
    if (i == 15) st = std::atof(f.c_str());
  }
  return (ut + st) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}
}  // namespace

double ProcCpuSeconds(pid_t pid) { return StatCpuSeconds("/proc/" + std::to_string(pid) + "/stat"); }

std::string ThreadCpu(pid_t pid) {
  std::vector<long> tids;
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  if (DIR* d = ::opendir(task.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') tids.push_back(std::atol(e->d_name));
    }
    ::closedir(d);
  }
  std::sort(tids.begin(), tids.end());
  std::string out;
  char buf[64];
  for (long tid : tids) {
    // /proc/PID/task/TID/stat has the same layout as /proc/PID/stat.
    double s = StatCpuSeconds(task + "/" + std::to_string(tid) + "/stat");
    std::snprintf(buf, sizeof(buf), "%s%ld:%.2f", out.empty() ? "" : " ", tid, s);
    out += buf;
  }
  return out;
}

double SelfCpuSeconds() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  return buf;
}

std::string BinDir() {
  const char* env = std::getenv("SLUICE_BIN_DIR");
  if (env && *env) return env;
  std::string exe = SelfExe();
  size_t slash = exe.rfind('/');
  return slash == std::string::npos ? "." : exe.substr(0, slash);
}

JsonLine::JsonLine(const std::string& bench, const std::string& name) {
  s_ = "{\"bench\":\"" + bench + "\",\"case\":\"" + name + "\"";
}

JsonLine& JsonLine::Str(const std::string& key, const std::string& value) {
  s_ += ",\"" + key + "\":\"";
  for (char c : value) {
    if (c == '"' || c == '\\') {
      s_ += '\\';
      s_ += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      s_ += ' ';
    } else {
      s_ += c;
    }
  }
  s_ += "\"";
  return *this;
}

JsonLine& JsonLine::Int(const std::string& key, int64_t value) {
  s_ += ",\"" + key + "\":" + std::to_string(value);
  return *this;
}

JsonLine& JsonLine::Num(const std::string& key, double value) {
  char buf[64];
  if (!std::isfinite(value)) {
    std::snprintf(buf, sizeof(buf), "null");
  } else if (std::fabs(value) >= 1000) {
    std::snprintf(buf, sizeof(buf), "%.0f", value);
  } else {
    std::snprintf(buf, sizeof(buf), "%.4g", value);
  }
  s_ += ",\"" + key + "\":" + buf;
  return *this;
}

JsonLine& JsonLine::Bool(const std::string& key, bool value) {
  s_ += ",\"" + key + "\":" + (value ? "true" : "false");
  return *this;
}

void JsonLine::Print() {
  std::printf("%s}\n", s_.c_str());
  std::fflush(stdout);
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

namespace {
std::vector<SummaryRow>& Rows() {
  static std::vector<SummaryRow> rows;
  return rows;
}
}  // namespace

void AddSummary(SummaryRow row) { Rows().push_back(std::move(row)); }

void PrintSummary() {
  size_t w[3] = {5, 4, 6};
  for (const auto& r : Rows()) {
    w[0] = std::max(w[0], r.bench.size());
    w[1] = std::max(w[1], r.name.size());
    w[2] = std::max(w[2], r.figure.size());
  }
  std::fprintf(stderr, "\n%-*s  %-*s  %-*s  %s\n", static_cast<int>(w[0]), "bench",
               static_cast<int>(w[1]), "case", static_cast<int>(w[2]), "figure", "note");
  for (const auto& r : Rows()) {
    std::fprintf(stderr, "%-*s  %-*s  %-*s  %s\n", static_cast<int>(w[0]), r.bench.c_str(),
                 static_cast<int>(w[1]), r.name.c_str(), static_cast<int>(w[2]),
                 r.figure.c_str(), r.note.c_str());
  }
}

std::string FormatRate(double per_s) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.0f/s", per_s);
  return buf;
}

}  // namespace bench
}  // namespace sluice
