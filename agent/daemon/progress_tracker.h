// Where this agent's ranks are in a point: each rank's newest Progress record (from its progress
// file, which LocalLauncher reads as it grows and hands over through LaunchOptions::on_progress),
// folded into the slowest rank's position (common/aggregate/progress.h) as the API's Progress.
// The launcher's thread observes, the agent's progress thread reads: it is thread-safe.
#ifndef MOECAP_AGENT_DAEMON_PROGRESS_TRACKER_H_
#define MOECAP_AGENT_DAEMON_PROGRESS_TRACKER_H_

#include <map>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/workload/config.h"
#include "moecap/v1/job.pb.h"

namespace moecap::agentd {

class ProgressTracker {
 public:
  // `ranks`: this agent's global ranks; `config`: the point they run.
  ProgressTracker(const std::vector<int>& ranks, const WorkloadConfig& config);

  // Rank `rank`'s newest record (ranks that are not this agent's are ignored).
  void Observe(int rank, const v1::Progress& progress);

  // SETUP (at the first phase, nothing done) until every rank has reported (a rank reports once
  // it has joined the communicator and made its weights); then the slowest rank's record.
  // ranks_reporting counts the ranks that have reported; iterations_total is the point's.
  v1::Progress Current() const;

 private:
  mutable absl::Mutex mu_;
  std::map<int, std::optional<v1::Progress>> ranks_ ABSL_GUARDED_BY(mu_);
  v1::Phase first_phase_ = v1::PHASE_UNSPECIFIED;
  int64_t iterations_total_ = 0;
};

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_PROGRESS_TRACKER_H_
