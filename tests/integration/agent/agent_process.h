// A moecap-agent process for tests: started with fork/exec (killed with the test if the test
// dies: PR_SET_PDEATHSIG), its stderr in a log file, signalled and reaped with bounded waits.
#ifndef MOECAP_TESTS_INTEGRATION_AGENT_AGENT_PROCESS_H_
#define MOECAP_TESTS_INTEGRATION_AGENT_AGENT_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace moecap::testing {

class AgentProcess {
 public:
  AgentProcess(const std::string& binary, const std::vector<std::string>& args,
               const std::string& log_path)
      : log_path_(log_path) {
    std::vector<std::string> all = {binary};
    // The test coordinators here serve plaintext on loopback: say so, unless the test chose.
    if (std::find(args.begin(), args.end(), "--insecure") == args.end() &&
        std::find(args.begin(), args.end(), "--tls-ca") == args.end()) {
      all.push_back("--insecure");
    }
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int log = open(log_path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(126);
      if (log >= 0) {
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (log >= 0) close(log);
  }
  ~AgentProcess() {
    if (pid_ > 0 && !exit_status_.has_value()) {
      kill(pid_, SIGKILL);
      Wait(absl::Seconds(5));
    }
  }
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int signal) {
    if (pid_ > 0 && !exit_status_.has_value()) kill(pid_, signal);
  }
  // The wait status once the process has exited within `timeout`.
  std::optional<int> Wait(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (!exit_status_.has_value() && pid_ > 0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_status_ = status;
        break;
      }
      if (absl::Now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return exit_status_;
  }
  std::string Log() const {
    std::ifstream in(log_path_);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

}  // namespace moecap::testing

#endif  // MOECAP_TESTS_INTEGRATION_AGENT_AGENT_PROCESS_H_
