// The agent's Prometheus metrics (common/telemetry, names in metric_names.h kAgentMetrics,
// documented in docs/monitoring.md): device inventory and peaks, coordinator connection,
// heartbeat failures, the current job, and per job the measured steps' times, counted bytes and
// FLOPs, tokens and communication. Every series carries the agent's name.
#ifndef MOECAP_AGENT_DAEMON_AGENT_METRICS_H_
#define MOECAP_AGENT_DAEMON_AGENT_METRICS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/telemetry/registry.h"
#include "moecap/v1/agent.pb.h"
#include "moecap/v1/report.pb.h"

namespace moecap::agentd {

class AgentMetrics {
 public:
  // Registers kAgentMetrics in `registry` (which must outlive this object) and sets the info
  // series.
  static absl::StatusOr<std::unique_ptr<AgentMetrics>> Create(telemetry::Registry& registry,
                                                              std::string agent,
                                                              std::string backend,
                                                              std::string version);

  // The devices and their peaks, as registered with the coordinator.
  void SetInventory(const v1::HardwareInventory& inventory);
  void SetConnected(bool connected);
  void HeartbeatFailed();
  // A job starts: the previous job's step and counter series are dropped, the current-job series
  // is set.
  void JobStarted(const std::string& job_id, int point_index);
  // The job is over (success or not): the current-job series goes; the job's series stay until
  // the next job starts (so a final scrape sees them).
  void JobFinished();
  // The measured steps of this agent's ranks (warm-up excluded): per phase, the slowest local
  // rank's step times, the ranks' counted bytes, FLOPs and tokens, and their all-to-all traffic.
  void RecordResults(const std::string& job_id, const std::vector<v1::RankReport>& ranks);

 private:
  AgentMetrics(telemetry::Registry& registry, std::string agent);

  telemetry::Registry& registry_;
  const std::string agent_;
  absl::Mutex mu_;
  std::string current_job_ ABSL_GUARDED_BY(mu_);
  std::string current_point_ ABSL_GUARDED_BY(mu_);
  std::string last_job_ ABSL_GUARDED_BY(mu_);  // whose per-job series are exported
};

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_AGENT_METRICS_H_
