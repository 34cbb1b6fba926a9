#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "tests/support/support.h"

extern char** environ;

namespace sluice {
namespace testing {

Process::~Process() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
}

bool Process::Start(const Options& options, std::string* error) {
  if (pid_ > 0 || options.argv.empty()) {
    if (error) *error = "already running or empty argv";
    return false;
  }
  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls run.
  auto open_out = [](const std::string& path) {
    return open(path.empty() ? "/dev/null" : path.c_str(),
                O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  };
  int out_fd = open_out(options.stdout_path);
  int err_fd = open_out(options.stderr_path);
  int in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out_fd < 0 || err_fd < 0 || in_fd < 0) {
    if (error) *error = std::string("open output: ") + std::strerror(errno);
    if (out_fd >= 0) close(out_fd);
    if (err_fd >= 0) close(err_fd);
    if (in_fd >= 0) close(in_fd);
    return false;
  }
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  // extra_env replaces inherited variables of the same name.
  auto overridden = [&](const char* e) {
    for (const auto& x : options.extra_env) {
      size_t eq = x.find('=');
      if (eq != std::string::npos && std::strncmp(e, x.c_str(), eq + 1) == 0) return true;
    }
    return false;
  };
  for (char** e = environ; *e != nullptr; ++e) {
    if (!overridden(*e)) envp.push_back(*e);
  }
  for (const auto& e : options.extra_env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    if (error) *error = std::string("fork: ") + std::strerror(errno);
    close(out_fd);
    close(err_fd);
    close(in_fd);
    return false;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(126);
    // Fresh signal state: tests may block signals in threads.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(out_fd);
  close(err_fd);
  close(in_fd);
  pid_ = pid;
  return true;
}

void Process::Kill(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

std::optional<int> Process::Wait(int64_t timeout_us) {
  if (pid_ <= 0) return wait_status_;
  const int64_t deadline = MonoNowUs() + timeout_us;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      wait_status_ = status;
      return status;
    }
    if (r < 0 && errno != EINTR) {  // not our child any more
      pid_ = -1;
      return wait_status_;
    }
    if (MonoNowUs() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int Process::Terminate(int64_t grace_us) {
  if (pid_ <= 0) return wait_status_;
  Kill(SIGTERM);
  if (auto st = Wait(grace_us)) return *st;
  Kill(SIGKILL);
  auto st = Wait(10000000);
  return st ? *st : -1;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace testing
}  // namespace sluice
