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
// - Communication: bytes are summed over the ranks; bandwidths are nccl-tests' and DeepEP's
//   (common/parallel_metrics.h): the busiest rank's bytes over the slowest rank's mean time (and,
//   per all-to-all, over the fastest rank's: the transfer itself).
// - Routing imbalance: from the ranks' expert histograms merged, per layer the busiest expert's
//   tokens ÷ the mean over all E experts; the phase's figure is the largest layer's.
// - Sub-phase times are the slowest rank's (the one with the largest mean step time).
// - With the workload's model_spec, the counted terms are held against CountMoeBlocks for the
//   model as run and the measured activated experts (PhaseResult.metric_core).
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

// The phase of a point's result, or null when it did not run.
const v1::PhaseResult* FindPhase(const v1::PointResult& point, v1::Phase phase);

// The mean time per step in the MoE blocks (gate, dispatch, experts, combine) of `times` (a phase
// result's: its slowest rank's), apart from attention and the LM head.
double MoeMeanSeconds(const v1::PhaseTimes& times);

// The one builder of v1::Percentiles (the agent's RankPhase times and the slowest rank's step
// time here): min, p50, p90, p99 (common/stats.h: numpy's default interpolation), max, mean,
// count and the population standard deviation of `values`; all zero for none.
v1::Percentiles PercentilesOf(const std::vector<double>& values);

}  // namespace moecap

#endif  // MOECAP_COMMON_AGGREGATE_AGGREGATOR_H_
