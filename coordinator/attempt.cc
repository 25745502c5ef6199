// The pure parts of a point attempt (see attempt.h).
#include "coordinator/attempt.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/proto_util.h"

namespace moecap::coordinator {

int32_t NodesForPoint(const v1::PointWorkload& workload, int32_t devices_per_node) {
  const int32_t world = std::max(1, workload.expert_parallel());
  const int32_t dpn = std::max(1, devices_per_node);
  return (world + dpn - 1) / dpn;
}

absl::StatusOr<Attempt> BuildAttempt(const v1::Job& job, int32_t index, int32_t attempt,
                                     int32_t devices_per_node,
                                     const std::vector<NodePlacement>& gang, v1::Backend backend,
                                     absl::Time deadline) {
  const v1::PointWorkload& w = job.points(index).workload();
  const int32_t world = std::max(1, w.expert_parallel());
  const int32_t dpn = std::max(1, devices_per_node);
  const int32_t nodes = NodesForPoint(w, dpn);
  if (nodes > static_cast<int32_t>(gang.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat("needs ", nodes, " agents; the job holds ", gang.size()));
  }
  Attempt a;
  a.point_index = index;
  a.attempt = attempt;
  a.scope = absl::StrCat(job.id(), "/p", index, "/a", attempt);
  a.deadline = deadline;
  for (int32_t n = 0; n < nodes; ++n) {
    const NodePlacement& placed = gang[n];
    AttemptNode node;
    node.agent_id = placed.agent_id;
    node.node_rank = n;
    v1::Assignment& asg = node.assignment;
    asg.set_job_id(job.id());
    asg.set_job_name(job.name());
    asg.set_point_index(index);
    asg.set_attempt(attempt);
    asg.set_world_size(world);
    asg.set_node_rank(n);
    asg.set_nodes(nodes);
    asg.set_rendezvous_prefix(a.scope);
    *asg.mutable_workload() = w;
    if (w.backend() != v1::BACKEND_CPU && w.backend() != v1::BACKEND_CUDA) {
      asg.mutable_workload()->set_backend(backend);
    }
    *asg.mutable_deadline() = ToProtoTime(deadline);
    for (int32_t r = n * dpn, local = 0; r < std::min(world, (n + 1) * dpn); ++r, ++local) {
      v1::RankAssignment* ra = asg.add_ranks();
      ra->set_rank(r);
      ra->set_device_index(placed.device_indices[local]);
      ra->set_local_rank(local);
      node.ranks.push_back(r);
    }
    a.nodes.push_back(std::move(node));
  }
  return a;
}

absl::Status CheckNodeReport(const AttemptNode& node, const v1::NodeReport& report,
                             const std::map<int32_t, v1::RankReport>& rank_reports) {
  std::set<int32_t> covered;
  for (const v1::RankReport& r : report.ranks()) {
    if (std::find(node.ranks.begin(), node.ranks.end(), r.rank()) == node.ranks.end() ||
        !covered.insert(r.rank()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("field 'report.ranks': rank ", r.rank(),
                       " is not one of this agent's ranks or is given twice"));
    }
  }
  std::vector<int32_t> missing;
  for (int32_t r : node.ranks) {
    if (covered.count(r) == 0 && rank_reports.count(r) == 0) missing.push_back(r);
  }
  if (!missing.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("field 'report.ranks': the reports of rank", missing.size() == 1 ? " " : "s ",
                     absl::StrJoin(missing, ", "),
                     " are missing (send them in NodeReport.ranks or with ReportRank first)"));
  }
  if (report.devices_size() == 0) {
    return absl::InvalidArgumentError(
        "field 'report.devices': the devices used, with their peaks, are required");
  }
  return absl::OkStatus();
}

std::vector<v1::NodeReport> NodeReportsOf(const Attempt& attempt) {
  std::vector<v1::NodeReport> out;
  for (const AttemptNode& node : attempt.nodes) {
    auto it = attempt.node_reports.find(node.agent_id);
    v1::NodeReport report = it == attempt.node_reports.end() ? v1::NodeReport() : it->second;
    if (report.ranks_size() == 0) {
      for (int32_t r : node.ranks) {
        auto rank = attempt.rank_reports.find(r);
        *report.add_ranks() = rank == attempt.rank_reports.end() ? v1::RankReport() : rank->second;
      }
    }
    out.push_back(std::move(report));
  }
  return out;
}

}  // namespace moecap::coordinator
