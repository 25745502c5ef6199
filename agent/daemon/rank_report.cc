// RankResult -> RankReport, and failure classification.
#include "agent/daemon/rank_report.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/workload/counting.h"
#include "common/aggregate/aggregator.h"
#include "common/plan/convert.h"

namespace moecap::agentd {
namespace {

// Every step's time is reported up to this many steps (RankPhase.step_seconds may be empty when
// there are very many; the percentiles always cover all of them).
constexpr size_t kMaxStepSamples = 10000;

double Mean(const std::vector<double>& values) {
  if (values.empty()) return 0;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

v1::Phase PhaseToProto(ServingPhase phase) {
  return phase == ServingPhase::kPrefill ? v1::PHASE_PREFILL : v1::PHASE_DECODE;
}

// The rank's share of the dense count (every expert for every token: A_l = E, k = E), split as
// CountRankStep splits the sparse one, so that the ranks' dense shares add up to
// CountMoeBlocks(..., Counting::kDense) exactly: each of the rank's experts processes every token
// of the step in every layer.
Counts DenseShare(const ModelSpec& scaled, const WorkloadConfig& config,
                  const RankPointResult& point, int64_t local_experts, bool counts_replicated) {
  StepTally dense;
  dense.own_tokens = point.tally.own_tokens;
  dense.pairs_computed = point.tokens * local_experts * config.layers;
  dense.local_activated_sum = local_experts * config.layers;
  return CountRankStep(scaled, config.dtype, config.layers, dense, counts_replicated).counted;
}

v1::RankPhase PhaseFromPoint(const RankPointResult& point, const WorkloadConfig& config,
                             const ModelSpec& scaled, const Range& experts, int rank) {
  v1::RankPhase out;
  out.set_phase(PhaseToProto(point.phase));
  const PhaseSamples& s = point.samples;
  out.set_iterations(static_cast<int64_t>(s.step.size()));
  out.set_tokens_per_step(point.tally.own_tokens);
  if (s.step.size() <= kMaxStepSamples) {
    out.mutable_step_seconds()->Assign(s.step.begin(), s.step.end());
  }
  *out.mutable_step_time() = PercentilesOf(s.step);
  *out.mutable_sub_times()->mutable_gate() = PercentilesOf(s.gate);
  *out.mutable_sub_times()->mutable_dispatch() = PercentilesOf(s.dispatch);
  *out.mutable_sub_times()->mutable_experts() = PercentilesOf(s.experts);
  *out.mutable_sub_times()->mutable_combine() = PercentilesOf(s.combine);
  *out.mutable_counts() = TermCountsToProto(point.counts.counted);
  *out.mutable_dense_counts() =
      TermCountsToProto(DenseShare(scaled, config, point, experts.count, rank == 0));

  const CommBytes& c = point.counts.comm;
  v1::Communication* comm = out.mutable_communication();
  comm->set_dispatch_logical_bytes(c.dispatch_logical);
  comm->set_dispatch_remote_bytes(c.dispatch_remote);
  comm->set_combine_logical_bytes(c.combine_logical);
  comm->set_combine_remote_bytes(c.combine_remote);
  const double comm_seconds = Mean(s.dispatch) + Mean(s.combine);
  if (comm_seconds > 0) {
    comm->set_algbw_bytes_per_s((c.dispatch_logical + c.combine_logical) / comm_seconds);
    comm->set_busbw_bytes_per_s((c.dispatch_remote + c.combine_remote) / comm_seconds);
  }

  // The routing is fixed for the point (the harness's untimed first step), so every timed step
  // sends the same tokens to the same experts.
  const int64_t total_experts = scaled.experts;
  v1::ExpertHistogram* histogram = out.mutable_expert_tokens();
  for (int64_t e = experts.begin; e < experts.begin + experts.count; ++e) {
    histogram->add_experts(static_cast<int32_t>(e));
  }
  double imbalance_sum = 0;
  for (const std::vector<int64_t>& layer : point.global_histogram) {
    int64_t activated = 0;
    int64_t busiest = 0;
    v1::ExpertHistogram::Layer* row = histogram->add_layers();
    for (int64_t e = experts.begin; e < experts.begin + experts.count; ++e) {
      const int64_t tokens = layer[static_cast<size_t>(e)];
      activated += tokens > 0 ? 1 : 0;
      busiest = std::max(busiest, tokens);
      row->add_tokens(tokens * out.iterations());
    }
    out.add_activated_experts(static_cast<double>(activated));
    const int64_t all = std::accumulate(layer.begin(), layer.end(), int64_t{0});
    if (all > 0) {
      imbalance_sum += static_cast<double>(busiest) * static_cast<double>(total_experts) /
                       static_cast<double>(all);
    }
  }
  if (!point.global_histogram.empty()) {
    out.set_imbalance(imbalance_sum / static_cast<double>(point.global_histogram.size()));
  }
  if (point.energy_joules.has_value() && out.iterations() > 0) {
    out.set_energy_joules_per_step(*point.energy_joules / static_cast<double>(out.iterations()));
    out.set_energy_source(point.energy_source);
    out.set_energy_window_seconds_per_step(point.loop_seconds /
                                           static_cast<double>(out.iterations()));
  } else {
    out.set_energy_unavailable(point.energy_unavailable);
  }
  return out;
}

}  // namespace

v1::CheckResult CheckOf(const std::vector<RankPointResult>& points) {
  v1::CheckResult out;
  bool passed = true;
  std::string detail;
  for (const RankPointResult& p : points) {
    const CheckResult& c = p.check;
    if (!c.ran) continue;
    out.set_checked(true);
    passed = passed && c.passed;
    out.set_max_abs_error(std::max(out.max_abs_error(), c.max_abs_error));
    out.set_max_rel_error(std::max(out.max_rel_error(), c.max_rel_error));
    out.set_rel_tolerance(std::max(out.rel_tolerance(), c.tolerance));
    if (c.routing_mismatches > 0 || c.near_ties > 0 || !c.passed) {
      absl::StrAppend(&detail, detail.empty() ? "" : "; ", ServingPhaseName(p.phase), " batch ",
                      p.batch, ": ", c.passed ? "passed" : "FAILED", ", max rel error ",
                      c.max_rel_error, " (tolerance ", c.tolerance, "), ", c.routing_mismatches,
                      " routing mismatch(es), ", c.near_ties, " near tie(s)");
    }
  }
  out.set_passed(out.checked() && passed);
  out.set_detail(detail);
  return out;
}

v1::RankReport RankReportFromResult(const RankResult& result, const WorkloadConfig& config,
                                    const RankReportContext& context) {
  v1::RankReport report;
  report.set_job_id(context.job_id);
  report.set_point_index(context.point_index);
  report.set_attempt(context.attempt);
  report.set_rank(result.rank);
  report.set_agent_id(context.agent_id);
  report.set_device_index(context.device_index);
  const ModelSpec scaled = ScaledModel(config.model, config.scale);
  const Range experts = RankExperts(scaled.experts, result.rank, result.world_size);
  report.set_local_experts(static_cast<int32_t>(experts.count));
  for (const RankPointResult& point : result.points) {
    *report.add_phases() = PhaseFromPoint(point, config, scaled, experts, result.rank);
  }
  *report.mutable_check() = CheckOf(result.points);
  return report;
}

FailureClass ClassifyFailure(const absl::Status& status) {
  const absl::string_view message = status.message();
  switch (status.code()) {
    case absl::StatusCode::kCancelled:
      return {v1::FAILURE_KIND_CANCELLED, false};
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kOutOfRange:
      return {v1::FAILURE_KIND_SETUP, false};
    case absl::StatusCode::kResourceExhausted:
      return {v1::FAILURE_KIND_RESOURCES, false};
    default:
      break;
  }
  if (absl::StrContains(message, "rendezvous")) return {v1::FAILURE_KIND_RENDEZVOUS, true};
  // LocalLauncher's own bound on the whole run (the assignment's deadline).
  if (absl::IsDeadlineExceeded(status) && absl::StrContains(message, "did not finish within")) {
    return {v1::FAILURE_KIND_TIMEOUT, false};
  }
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) || absl::IsAborted(status)) {
    return {v1::FAILURE_KIND_COLLECTIVE, true};
  }
  return {v1::FAILURE_KIND_INTERNAL, true};
}

}  // namespace moecap::agentd
