// The coordinator's Prometheus series (names and labels from common/telemetry/metric_names.h,
// documented in docs/monitoring.md): agents and jobs by state, queue, scheduling latency, gRPC
// calls, and the last result of every point of the most recent jobs.
//
// Thread-safe (the registry's families are).
#ifndef MOECAP_COORDINATOR_COORDINATOR_METRICS_H_
#define MOECAP_COORDINATOR_COORDINATOR_METRICS_H_

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/telemetry/registry.h"
#include "moecap/v1/agent.pb.h"
#include "moecap/v1/job.pb.h"
#include "moecap/v1/report.pb.h"

namespace moecap::coordinator {

// Job counts for the gauges refreshed at scrape time.
struct JobStats {
  std::map<v1::JobState, int> by_state;  // every state, possibly 0
  int queue_depth = 0;
  // Queued jobs by verdict ("needs_agents", "agents_busy", "behind_job"), each present, maybe 0.
  std::map<std::string, int> waiting_by_why;
  absl::Duration oldest_queued = absl::ZeroDuration();
};

class CoordinatorMetrics {
 public:
  // Registers kCoordinatorMetrics in `registry` (which must outlive this object).
  static absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> Create(telemetry::Registry& registry,
                                                                    size_t max_result_jobs = 100);

  void JobSubmitted();
  void JobFinished(v1::JobState state);
  void JobScheduled(absl::Duration waited);
  // Sets the result gauges of one point; jobs beyond the most recent `max_result_jobs` have
  // their series removed (Prometheus keeps their history).
  void SetPointResult(absl::string_view job_id, absl::string_view model,
                      const v1::PointWorkload& workload, const v1::PointResult& result);
  void RpcHandled(absl::string_view service, absl::string_view method, absl::string_view type,
                  absl::string_view code, double seconds);
  // Scrape-time gauges.
  void SetAgents(const std::map<v1::AgentState, int>& by_state,
                 const std::vector<std::pair<std::string, bool>>& names_and_liveness);
  void SetJobs(const JobStats& stats);

  // Lower-case state words of the `state` label ("queued", "succeeded", "idle", "lost").
  static std::string JobStateLabel(v1::JobState state);
  static std::string AgentStateLabel(v1::AgentState state);

 private:
  CoordinatorMetrics(telemetry::Registry& registry, size_t max_result_jobs)
      : registry_(registry), max_result_jobs_(max_result_jobs) {}
  absl::Status Init();
  void ForgetJobLocked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  telemetry::Registry& registry_;
  const size_t max_result_jobs_;
  telemetry::GaugeFamily* agents_ = nullptr;
  telemetry::GaugeFamily* agent_up_ = nullptr;
  telemetry::GaugeFamily* jobs_ = nullptr;
  telemetry::GaugeFamily* waiting_ = nullptr;
  std::shared_ptr<telemetry::Counter> submitted_;
  telemetry::CounterFamily* finished_ = nullptr;
  std::shared_ptr<telemetry::Gauge> queue_depth_;
  std::shared_ptr<telemetry::Gauge> oldest_age_;
  std::shared_ptr<telemetry::Histogram> scheduling_;
  telemetry::CounterFamily* rpc_handled_ = nullptr;
  telemetry::HistogramFamily* rpc_seconds_ = nullptr;

  absl::Mutex mu_;
  // Label tuples of each job's result series, oldest job first, for removal.
  struct SeriesRef {
    std::string family;
    std::vector<std::string> labels;
  };
  std::deque<std::string> result_jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::vector<SeriesRef>> result_series_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> agent_up_names_ ABSL_GUARDED_BY(mu_);
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_COORDINATOR_METRICS_H_
