// One point attempt as the JobManager tracks it, and the pure parts of its life: building the
// per-agent assignments from the job and its gang (BuildAttempt), checking a node report against
// the ranks the agent holds and those already reported (CheckNodeReport), and assembling the
// reports the aggregator reads (NodeReportsOf). No locks, no clock, no I/O: tested alone.
#ifndef MOECAP_COORDINATOR_ATTEMPT_H_
#define MOECAP_COORDINATOR_ATTEMPT_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/scheduler.h"
#include "moecap/v1/agent_service.pb.h"
#include "moecap/v1/job.pb.h"

namespace moecap::coordinator {

struct AttemptNode {
  std::string agent_id;
  int32_t node_rank = 0;
  std::vector<int32_t> ranks;
  v1::Assignment assignment;
};

// A peer's failure report held while its cause may still show (see job_manager.h).
struct PeerFailure {
  std::string agent_id;
  std::string reason;  // "agent 'a0' rank 0 reported collective: ..."
  bool agent_stopped = false;
};

struct Attempt {
  int32_t point_index = 0;
  int32_t attempt = 0;
  std::string scope;
  absl::Time deadline;
  std::vector<AttemptNode> nodes;
  std::map<std::string, v1::NodeReport> node_reports;  // by agent id
  std::map<int32_t, v1::RankReport> rank_reports;      // by rank
  std::map<std::pair<std::string, int32_t>, v1::Progress> progress;
  absl::Time last_progress_event = absl::InfinitePast();
  // Root cause first (see job_manager.h).
  std::map<std::string, absl::Time> streams_closed;  // suspects: agent id -> when
  std::vector<PeerFailure> peer_failures;            // held, in arrival order
  absl::Time root_cause_deadline = absl::InfiniteFuture();
};

// Agents a point needs: its expert_parallel ranks filling nodes of `devices_per_node` in order.
int32_t NodesForPoint(const v1::PointWorkload& workload, int32_t devices_per_node);

// Attempt number `attempt` of `job`'s point `index` on the first NodesForPoint agents of `gang`
// (`backend`: the gang's, for a workload that names none), due at `deadline`. FailedPrecondition
// when the gang holds fewer agents than the point needs.
absl::StatusOr<Attempt> BuildAttempt(const v1::Job& job, int32_t index, int32_t attempt,
                                     int32_t devices_per_node,
                                     const std::vector<NodePlacement>& gang, v1::Backend backend,
                                     absl::Time deadline);

// A node report is complete when each of the node's ranks is in it or was sent with ReportRank
// before, and no rank is foreign or given twice; it names the devices used.
absl::Status CheckNodeReport(const AttemptNode& node, const v1::NodeReport& report,
                             const std::map<int32_t, v1::RankReport>& rank_reports);

// The node reports of a completed attempt, in node order, each with its ranks filled in from
// the ReportRank messages where the agent left NodeReport.ranks empty.
std::vector<v1::NodeReport> NodeReportsOf(const Attempt& attempt);

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_ATTEMPT_H_
