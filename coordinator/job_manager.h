// The job lifecycle (Ray's GcsJobManager + placement): submission, the queue, gang placement
// through the Scheduler, one point attempt at a time on the job's agents, reports, aggregation,
// retries, cancellation, recovery after a restart, and the events WatchJob streams.
//
// A job moves QUEUED -> SCHEDULED (gang placed) -> RENDEZVOUS -> RUNNING -> AGGREGATING (its last
// point's reports are in) -> SUCCEEDED | FAILED | CANCELLED; INTERRUPTED when the coordinator
// restarted while it ran (requeued once, then FAILED). Each point moves the same way per attempt.
// The job holds its agents (its gang) from placement until it ends or is requeued; its points run
// in order, each one assignment per agent that holds ranks of it (expert_parallel ranks filling
// the nodes in order).
//
// Per point attempt the coordinator expects from every agent with ranks: optionally
// ReportProgress, optionally ReportRank per rank, then one ReportNode (whose `ranks` may be left
// empty when every rank was sent with ReportRank) — or a ReportFailure. The point is aggregated
// when every such agent's ReportNode is in.
//
// Root cause first: when an agent dies mid-point its peers' collectives fail too, and their
// reports often arrive before its lease runs out. A peer's collective or rendezvous failure
// therefore does not fail the attempt by itself while a cause may still show: an agent of the
// attempt whose assignment stream closed is the cause at once; otherwise the report is held until
// an agent of the attempt is lost or its stream closes (the cause), or root_cause_wait passes
// (the report was the cause). The reason names the cause first, the peers' reports after it.
//
// Failures: an agent lost, a failure report, or a missed deadline fail the attempt: the other
// agents get a Cancel, the rendezvous scope is deleted. With retries left (plan.retry, never for
// a failed check or a cancellation) the point goes back to QUEUED and the job is requeued (it may
// get other agents); otherwise the point and the job fail and the points not yet run are
// CANCELLED. Results of points already done are kept. Agents that were told to stop are not
// given new work until they say they stopped (a ReportFailure for the attempt, or a heartbeat
// that no longer names it).
//
// Memory: a finished job leaves memory once its last change is in the store; only its id,
// submission order and final state stay (a few dozen bytes, for listings, filters, metrics and
// the answers to late reports). Its views, results and watch snapshots are read back from the
// store when asked for, so the coordinator's memory grows with the jobs queued and running, not
// with the jobs it ever ran.
//
// Thread-safe: one mutex for the state; store writes happen under it (in order); messages to
// agents and watchers go out after it is released, in commit order.
#ifndef MOECAP_COORDINATOR_JOB_MANAGER_H_
#define MOECAP_COORDINATOR_JOB_MANAGER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/catalog.h"
#include "common/clock.h"
#include "coordinator/agent_registry.h"
#include "coordinator/agent_stream_hub.h"
#include "coordinator/attempt.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/job_builder.h"
#include "coordinator/job_event_hub.h"
#include "coordinator/job_store.h"
#include "coordinator/rendezvous_store.h"
#include "coordinator/scheduler.h"
#include "moecap/v1/agent_service.pb.h"
#include "moecap/v1/job.pb.h"
#include "moecap/v1/job_service.pb.h"

namespace moecap::coordinator {

struct JobManagerOptions {
  SchedulerOptions scheduler;
  // A point attempt that has not reported by its deadline (workload.timeouts.point_seconds after
  // the assignment) plus this grace fails with a timeout; the agent gives up at the deadline.
  absl::Duration point_deadline_grace = absl::Seconds(10);
  // WatchJob progress events per point at most this often.
  absl::Duration progress_interval = absl::Milliseconds(250);
  // Restarts a running job survives (requeued each time); one more fails it.
  int max_interruptions = 1;
  // Tick re-runs placement when the queue, the agents or their streams changed, and at least
  // this often otherwise (backfill windows, wait reasons).
  absl::Duration schedule_refresh = absl::Seconds(1);
  // How long a peer's collective or rendezvous failure waits for its cause (see the file
  // comment). At least the agents' lease, so that a dead agent is always found in time; zero
  // fails at once with the report.
  absl::Duration root_cause_wait = absl::Seconds(10);
};

// One SubmitPlan as the manager takes it.
struct Submission {
  PlanSubmission plan;
  bool dry_run = false;      // validated and returned unqueued, without an id
  std::string submitted_by;  // the caller's token name; empty without a tokens file
};

class JobManager {
 public:
  // Every reference must outlive the manager. `metrics` may be null.
  JobManager(const Clock& clock, JobStore& store, AgentRegistry& agents,
             RendezvousStore& rendezvous, AgentStreamHub& streams, JobEventHub& events,
             const Catalog& catalog, JobManagerOptions options, CoordinatorMetrics* metrics);
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Loads every job from the store: finished jobs keep their results; queued jobs queue again;
  // jobs that were running become INTERRUPTED and are requeued (or FAILED when interrupted
  // before). Call once, before serving.
  absl::Status Recover();

  // ---- JobService ----
  // Validates and queues (see BuildJob for the errors). A dry run returns the job unqueued,
  // without an id.
  absl::StatusOr<v1::Job> Submit(const PlanSubmission& submission, bool dry_run,
                                 absl::string_view submitted_by);
  // Several submissions in one commit (group commit: one store transaction for all): the
  // results in order, each as Submit gives it. If the transaction fails, every job of it is
  // refused (Unavailable) and none is queued; a plan that does not build fails alone.
  std::vector<absl::StatusOr<v1::Job>> SubmitAll(absl::Span<const Submission> submissions);
  absl::StatusOr<v1::Job> GetJob(absl::string_view job_id, v1::JobView view) const;
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request) const;
  // FailedPrecondition for a finished job.
  absl::StatusOr<v1::Job> Cancel(absl::string_view job_id, absl::string_view reason);
  absl::StatusOr<v1::GetResultsResponse> GetResults(absl::string_view job_id) const;
  // Sends `watcher` the job's FULL snapshot, then its events; a finished job's watcher is ended
  // right after the snapshot (returns 0). NotFound for an unknown job.
  absl::StatusOr<JobEventHub::SubscriptionId> Watch(absl::string_view job_id, bool include_progress,
                                                    std::shared_ptr<JobEventHub::Watcher> watcher);

  // ---- AgentService ----
  // A (re-)registration: whatever was queued for an older incarnation is dropped.
  void OnAgentRegistered(absl::string_view agent_id);
  // The agent opened its assignment stream: resend its current assignment, if any (agents treat
  // assignments as idempotent by job, point and attempt).
  void OnStreamOpened(absl::string_view agent_id);
  // The agent's assignment stream closed (not replaced by a newer one): it is suspect until it
  // opens another (see the file comment).
  void OnStreamClosed(absl::string_view agent_id);
  // Registry listener: the agent's work is lost.
  void OnAgentLoss(const AgentLoss& loss);
  // Commands for a heartbeating agent (cancels of work it should not run); also acknowledges a
  // stop. The caller renewed the lease first.
  std::vector<v1::AgentCommand> OnHeartbeat(const v1::HeartbeatRequest& request);
  // Returns whether the assignment was cancelled (or is no longer current).
  absl::StatusOr<bool> ReportProgress(const v1::ReportProgressRequest& request);
  absl::Status ReportRank(const v1::RankReport& report);
  absl::Status ReportNode(const v1::NodeReport& report);
  absl::Status ReportFailure(const v1::ReportFailureRequest& request);

  // Periodic work (the maintenance thread, or tests with a fake clock): queue timeouts, point
  // deadlines, then gang placement of queued jobs.
  void Tick();

  JobStats Stats() const;

 private:
  struct JobEntry {
    v1::Job job;  // FULL view, authoritative
    int64_t seq = 0;
    GangSpec spec;
    absl::Time queued_since;
    v1::Backend backend = v1::BACKEND_UNSPECIFIED;  // of the gang
    std::vector<NodePlacement> gang;                // empty unless placed
    std::optional<Attempt> attempt;
    int interruptions = 0;
  };
  // What stays of a finished job (the rest is in the store).
  struct FinishedJob {
    int64_t seq = 0;
    v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
  };
  // Everything a change does besides the in-memory state, applied in order by Commit.
  struct Effects {
    std::map<std::string, std::set<int32_t>> changed_points;  // job -> point indices
    std::map<std::string, JobWrite> writes;
    std::vector<std::pair<std::string, v1::StreamAssignmentsResponse>> to_agents;
    std::vector<std::tuple<std::string, v1::WatchJobResponse, bool>> events;
    std::vector<std::string> scopes_to_delete;
  };

  // The commit protocol: `change` edits the state under mu_ and records in `fx` what else it
  // does; the writes are persisted under mu_ (in order), and messages to agents and watchers go
  // out after mu_ is released, in commit order. Returns what `change` returns.
  template <typename Change>
  auto Commit(Change&& change) ABSL_LOCKS_EXCLUDED(mu_, out_mu_) {
    Effects fx;
    using Result = decltype(change(fx));
    if constexpr (std::is_void_v<Result>) {
      {
        absl::MutexLock lock(&mu_);
        change(fx);
        PrepareDispatch(fx);
      }
      Dispatch(fx);
    } else {
      std::optional<Result> out;
      {
        absl::MutexLock lock(&mu_);
        out.emplace(change(fx));
        PrepareDispatch(fx);
      }
      Dispatch(fx);
      return *std::move(out);
    }
  }
  // Persists `fx` (under mu_) and takes out_mu_, so that Dispatch sends in commit order.
  void PrepareDispatch(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_)
      ABSL_EXCLUSIVE_LOCK_FUNCTION(out_mu_);
  void Dispatch(Effects& fx) ABSL_UNLOCK_FUNCTION(out_mu_);

  JobWrite& WriteOf(const JobEntry& e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MarkPoint(const JobEntry& e, int32_t index, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetJobState(JobEntry& e, v1::JobState state, const std::string& reason, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetPointState(JobEntry& e, int32_t index, v1::JobState state, const std::string& reason,
                     Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the job forward to `state` (SCHEDULED..AGGREGATING) if it is behind it.
  void AdvanceJob(JobEntry& e, v1::JobState state, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvancePoint(JobEntry& e, v1::JobState state, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void Enqueue(JobEntry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Dequeue(const JobEntry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartJob(JobEntry& e, const Placement& placement, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartNextPoint(JobEntry& e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops the running attempt (cancel to its agents except `skip_agent`, scope deleted) and lets
  // go of the gang: agents that were told to stop wait for their acknowledgement.
  void StopAttemptAndReleaseGang(JobEntry& e, const std::string& reason,
                                 const std::set<std::string>& stopped_agents, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailAttempt(JobEntry& e, const std::string& reason, v1::FailureKind kind, bool retryable,
                   const std::set<std::string>& stopped_agents, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailJob(JobEntry& e, v1::JobState final_state, const std::string& reason, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails the attempt with `cause` first and the held peer reports after it (but the one that is
  // the cause); `lost_agent` (may be empty) needs no cancel.
  void FailWithCause(JobEntry& e, const std::string& cause, const std::string& lost_agent,
                     Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The cause of the held peer failures, if one shows now: an agent of the attempt whose stream
  // closed, other than the reporters.
  std::optional<std::string> SuspectCause(const JobEntry& e) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompleteAttempt(JobEntry& e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The current attempt of `job_id` that `agent_id` runs ranks of, or the reason it is not.
  absl::StatusOr<std::pair<JobEntry*, AttemptNode*>> CurrentAttempt(absl::string_view agent_id,
                                                                    absl::string_view job_id,
                                                                    int32_t point_index,
                                                                    int32_t attempt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  JobEntry* Find(absl::string_view job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const FinishedJob* FindFinished(absl::string_view job_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A finished job, read back from the store: `view` FULL assembles it whole, else its header.
  absl::StatusOr<v1::Job> ReadFinished(absl::string_view job_id, v1::JobView view) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A finished, stored job leaves memory but for its FinishedJob.
  void PageOutIfFinished(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const JobEntry* Find(absl::string_view job_id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Job View(const JobEntry& e, v1::JobView view) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // 1-based place in the queue, 0 when not queued: computed when a job is viewed (stored per
  // job, every cancel or start would renumber the whole queue).
  int32_t QueuePosition(const JobEntry& e) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Schedule(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string PointName(const JobEntry& e, int32_t index) const;

  const Clock& clock_;
  JobStore& store_;
  AgentRegistry& agents_;
  RendezvousStore& rendezvous_;
  AgentStreamHub& streams_;
  JobEventHub& events_;
  const Catalog& catalog_;
  const JobManagerOptions options_;
  const Scheduler scheduler_;
  CoordinatorMetrics* const metrics_;

  // What the last placement pass saw: queue, registry and stream-hub versions.
  using ScheduleInputs = std::tuple<int64_t, int64_t, int64_t>;

  mutable absl::Mutex mu_ ABSL_ACQUIRED_BEFORE(out_mu_);
  absl::Mutex out_mu_;
  std::map<std::string, JobEntry> jobs_ ABSL_GUARDED_BY(mu_);
  // QUEUED jobs in scheduling order: (-priority, seq) -> id.
  std::map<std::pair<int32_t, int64_t>, std::string> queue_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, std::string> by_seq_ ABSL_GUARDED_BY(mu_);  // every job, active or finished
  absl::flat_hash_map<std::string, FinishedJob> finished_ ABSL_GUARDED_BY(mu_);
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t queue_version_ ABSL_GUARDED_BY(mu_) = 0;
  ScheduleInputs last_schedule_inputs_ ABSL_GUARDED_BY(mu_){-1, -1, -1};
  absl::Time last_schedule_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_JOB_MANAGER_H_
