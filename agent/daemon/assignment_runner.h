// Runs the assignments the coordinator sends, one at a time, each on a thread of its own: checks
// the assignment and turns its PointWorkload into a WorkloadConfig (assignment_check.h), launches
// this agent's ranks as processes of its own binary (LocalLauncher; global ranks and world size
// from the assignment; the rendezvous through the coordinator's store under the assignment's
// rendezvous_prefix), reports progress while they run, then the result (ReportRank per rank, then
// ReportNode) or a failure (ReportFailure with its kind), and returns to idle. A Cancel (stream or
// heartbeat) or Stop kills the ranks' process group (bounded) and reports the cancellation.
#ifndef MOECAP_AGENT_DAEMON_ASSIGNMENT_RUNNER_H_
#define MOECAP_AGENT_DAEMON_ASSIGNMENT_RUNNER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/daemon/agent_metrics.h"
#include "agent/daemon/agent_options.h"
#include "agent/daemon/coordinator_client.h"
#include "agent/daemon/coordinator_session.h"
#include "agent/daemon/report_sender.h"
#include "agent/workload/launcher.h"
#include "common/catalog.h"
#include "common/clock.h"

namespace moecap::agentd {

// Starts the ranks and returns their outputs (LocalLauncher::Run by default; tests inject).
using LaunchFn = std::function<absl::StatusOr<std::vector<v1::RankOutput>>(const LaunchOptions&,
                                                                           const WorkloadConfig&)>;

struct RunnerDeps {
  CoordinatorClient* client = nullptr;
  Clock* clock = nullptr;
  const Catalog* catalog = nullptr;
  AgentMetrics* metrics = nullptr;  // may be null
  // The current registration's id (it changes when the session registers again).
  std::function<std::string()> agent_id;
  LaunchFn launch;  // unset: LocalLauncher
};

class AssignmentRunner : public AssignmentHandler {
 public:
  // `info` is what the agent registered with (its devices and their peaks).
  AssignmentRunner(AgentOptions options, v1::AgentInfo info, RunnerDeps deps);
  ~AssignmentRunner() override;  // Stop()
  AssignmentRunner(const AssignmentRunner&) = delete;
  AssignmentRunner& operator=(const AssignmentRunner&) = delete;

  // Starts the assignment; one that arrives while another runs (or while draining) is refused
  // with a ReportFailure (SETUP, retryable).
  void OnAssignment(const v1::Assignment& assignment) override;
  // Cancels the running assignment if the cancel names it (point -1: any point; attempt 0: any).
  void OnCancel(const v1::Cancel& cancel) override;
  void OnDrain() override;
  void OnReregistered() override;
  v1::HeartbeatRequest State() override;

  // Cancels what runs and waits for it to wind down (the kill is bounded). Idempotent.
  void Stop();
  // Waits until no assignment runs, at most `timeout`; true when idle (tests).
  bool WaitIdle(absl::Duration timeout);

 private:
  struct Current {
    v1::Assignment assignment;
    std::shared_ptr<std::atomic<bool>> cancel;
  };

  void Run(v1::Assignment assignment, std::shared_ptr<std::atomic<bool>> cancel);
  // The run's body; returns the failure to report, or OK when the result has been reported.
  absl::Status Execute(const v1::Assignment& assignment, std::atomic<bool>& cancel);
  absl::StatusOr<WorkloadConfig> PrepareConfig(const v1::Assignment& assignment) const;
  LaunchOptions MakeLaunchOptions(const v1::Assignment& assignment,
                                  std::atomic<bool>& cancel) const;
  void ReportResults(const v1::Assignment& assignment, const WorkloadConfig& config,
                     const std::vector<v1::RankOutput>& outputs, absl::Time started);
  void ReportFailure(const v1::Assignment& assignment, const absl::Status& status, bool cancelled);

  const AgentOptions options_;
  const v1::AgentInfo info_;
  RunnerDeps deps_;
  absl::Notification stopping_;
  // Every report goes out through it; the runner stays busy meanwhile, so its window
  // (AgentOptions::report_retry) bounds how long.
  ReportSender sender_;

  mutable absl::Mutex mu_;
  std::unique_ptr<Current> current_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);  // the current or the last run
};

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_ASSIGNMENT_RUNNER_H_
