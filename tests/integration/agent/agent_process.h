// A moecap-agent process for tests: started with common/subprocess.h (killed with the test if the
// test dies: PR_SET_PDEATHSIG), its stdout and stderr in a log file, signalled and reaped with
// bounded waits.
#ifndef MOECAP_TESTS_INTEGRATION_AGENT_AGENT_PROCESS_H_
#define MOECAP_TESTS_INTEGRATION_AGENT_AGENT_PROCESS_H_

#include <signal.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/subprocess.h"

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
    SpawnOptions options;
    options.stdout_path = options.stderr_path = log_path;
    absl::StatusOr<Subprocess> process = Subprocess::Spawn(all, options);
    if (process.ok()) {
      process_ = *std::move(process);
    } else {
      spawn_error_ = process.status();
    }
  }
  // An agent still running is killed and reaped, bounded (Subprocess's destructor).
  ~AgentProcess() = default;
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  pid_t pid() const { return process_.has_value() ? process_->pid() : -1; }
  void Signal(int signal) {
    if (process_.has_value()) process_->Signal(signal);
  }
  // The wait status once the process has exited within `timeout`.
  std::optional<int> Wait(absl::Duration timeout) {
    return process_.has_value() ? process_->Wait(timeout) : std::nullopt;
  }
  std::string Log() const {
    if (!spawn_error_.ok()) return std::string(spawn_error_.message());
    std::ifstream in(log_path_);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::string log_path_;
  std::optional<Subprocess> process_;
  absl::Status spawn_error_;
};

}  // namespace moecap::testing

#endif  // MOECAP_TESTS_INTEGRATION_AGENT_AGENT_PROCESS_H_
