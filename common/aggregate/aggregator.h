// Aggregation of one point's per-rank reports into the cluster's result (METRICS.md
// "Utilisations", last lines): the counted bytes and FLOPs of all ranks over the SLOWEST rank's
// step time and over the SUM of the peaks of the devices used; dense MBU/MFU for contrast;
// step-time percentiles of the slowest rank; tokens/s; cost per million tokens; a per-node
// breakdown. Every formula comes from common/ (metrics.h, cost.h, stats.h), so the
// coordinator, moecap-bench and `moecapctl analyze` agree.
//
// Conventions (also in the report to the lead):
// - The slowest rank's time per step is the element-wise maximum over the ranks of their
//   step_seconds series (when every rank sent one of the same length), summarised with numpy's
//   default percentiles; otherwise the rank with the largest mean step time stands for it.
// - The devices used are the distinct (agent, device index) pairs of the NodeReports' `devices`;
//   ranks sharing a device (CPU backend) count it once. G of the cost is their number.
// - Communication: bytes and bandwidths are summed over the ranks (the cluster's aggregate).
// Pure: no I/O, no global state; thread-compatible.
#ifndef MOECAP_COMMON_AGGREGATE_AGGREGATOR_H_
#define MOECAP_COMMON_AGGREGATE_AGGREGATOR_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/catalog.h"
#include "moecap/v1/common.pb.h"
#include "moecap/v1/plan.pb.h"
#include "moecap/v1/report.pb.h"

namespace moecap {

struct PointAggregationInput {
  int32_t point_index = 0;
  int32_t attempt = 0;
  std::vector<v1::PointParameter> parameters;
  v1::PointWorkload workload;  // the point as it ran (B, P, O, dtype, phases, G)
  // One per agent that ran ranks of the point, each with its ranks (RankReports) and the devices
  // they used (with the peaks that are the denominators).
  std::vector<v1::NodeReport> nodes;
  std::map<std::string, std::string> agent_names;  // agent id -> name, for NodeResult
  v1::Pricing pricing;
  const Catalog* catalog = nullptr;  // for the devices' prices; no cost without it
  absl::Time finish_time = absl::UnixEpoch();
};

// The cluster result of one point. InvalidArgument when the reports are inconsistent: a rank of
// 0..expert_parallel-1 missing or reported twice, a phase of the workload missing from a rank, or
// no device reported.
absl::StatusOr<v1::PointResult> AggregatePoint(const PointAggregationInput& input);

// The one builder of v1::Percentiles (the agent's RankPhase times and the slowest rank's step
// time here): min, p50, p90, p99 (common/stats.h: numpy's default interpolation), max, mean,
// count and the population standard deviation of `values`; all zero for none.
v1::Percentiles PercentilesOf(const std::vector<double>& values);

}  // namespace moecap

#endif  // MOECAP_COMMON_AGGREGATE_AGGREGATOR_H_
