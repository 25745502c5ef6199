// RankResult -> RankReport.
#include "agent/workload/rank_report.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "agent/workload/counting.h"
#include "common/aggregate/aggregator.h"
#include "common/parallel_metrics.h"
#include "common/plan/convert.h"

namespace moecap {
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
  return CountRankStep(scaled, config.dtype, config.layers, dense, counts_replicated,
                       point.attention ? &*point.attention : nullptr)
      .counted;
}

v1::RankPhase PhaseFromPoint(const RankPointResult& point, const WorkloadConfig& config,
                             const ModelSpec& scaled, const Range& experts, int rank,
                             int world_size) {
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
  if (!s.attention.empty())
    *out.mutable_sub_times()->mutable_attention() = PercentilesOf(s.attention);
  if (!s.lm_head.empty()) *out.mutable_sub_times()->mutable_lm_head() = PercentilesOf(s.lm_head);
  if (!s.dense_ffn.empty()) {
    *out.mutable_sub_times()->mutable_dense_ffn() = PercentilesOf(s.dense_ffn);
  }
  *out.mutable_counts() = TermCountsToProto(point.counts.counted);
  *out.mutable_dense_counts() =
      TermCountsToProto(DenseShare(scaled, config, point, experts.count, rank == 0));

  const CommBytes& c = point.counts.comm;
  v1::Communication* comm = out.mutable_communication();
  comm->set_dispatch_logical_bytes(c.dispatch_logical);
  comm->set_dispatch_remote_bytes(c.dispatch_remote);
  comm->set_combine_logical_bytes(c.combine_logical);
  comm->set_combine_remote_bytes(c.combine_remote);
  const double logical = c.dispatch_logical + c.combine_logical;
  const double remote = c.dispatch_remote + c.combine_remote;
  const AllToAllFigures bw =
      AllToAllBandwidth({logical}, {remote}, Mean(s.dispatch) + Mean(s.combine));
  comm->set_algbw_bytes_per_s(bw.algbw);
  comm->set_busbw_bytes_per_s(BusBandwidth(bw.algbw, world_size));
  comm->set_remote_bw_bytes_per_s(bw.remote_bw);

  // The routing is fixed for the point (the harness's untimed first step), so every timed step
  // sends the same tokens to the same experts.
  v1::ExpertHistogram* histogram = out.mutable_expert_tokens();
  for (int64_t e = experts.begin; e < experts.begin + experts.count; ++e) {
    histogram->add_experts(static_cast<int32_t>(e));
  }
  for (const std::vector<int64_t>& layer : point.global_histogram) {
    int64_t activated = 0;
    v1::ExpertHistogram::Layer* row = histogram->add_layers();
    for (int64_t e = experts.begin; e < experts.begin + experts.count; ++e) {
      const int64_t tokens = layer[static_cast<size_t>(e)];
      activated += tokens > 0 ? 1 : 0;
      row->add_tokens(tokens * out.iterations());
    }
    out.add_activated_experts(static_cast<double>(activated));
  }
  if (point.energy_joules.has_value() && out.iterations() > 0) {
    out.set_energy_joules_per_step(*point.energy_joules / static_cast<double>(out.iterations()));
    out.set_energy_source(point.energy_source);
    out.set_energy_window_seconds_per_step(point.loop_seconds /
                                           static_cast<double>(out.iterations()));
  } else {
    out.set_energy_unavailable(point.energy_unavailable);
  }
  out.set_loop_seconds(point.loop_seconds);
  out.set_pairs_computed_per_step(point.tally.pairs_computed);
  *out.mutable_check() = CheckToProto(point.check);
  *out.mutable_physical_counts() = TermCountsToProto(point.counts.physical);
  out.set_activation_bytes(point.counts.activation_bytes);
  return out;
}

}  // namespace

v1::CheckResult CheckToProto(const CheckResult& c) {
  v1::CheckResult out;
  if (!c.ran) return out;
  out.set_checked(true);
  out.set_passed(c.passed);
  out.set_max_abs_error(c.max_abs_error);
  out.set_max_rel_error(c.max_rel_error);
  out.set_rel_tolerance(c.tolerance);
  out.set_near_ties(c.near_ties);
  out.set_routing_mismatches(c.routing_mismatches);
  return out;
}

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
    out.set_near_ties(out.near_ties() + c.near_ties);
    out.set_routing_mismatches(out.routing_mismatches() + c.routing_mismatches);
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
    *report.add_phases() =
        PhaseFromPoint(point, config, scaled, experts, result.rank, result.world_size);
  }
  *report.mutable_check() = CheckOf(result.points);
  return report;
}

v1::RankOutput RankOutputFromResult(const RankResult& result, const WorkloadConfig& config,
                                    const RankReportContext& context) {
  v1::RankOutput out;
  out.set_rank(result.rank);
  v1::RankEnvironment& environment = *out.mutable_environment();
  environment.set_host(result.host);
  environment.set_threads(result.threads);
  environment.set_backend(result.backend);
  environment.set_library(result.library);
  environment.set_communicator(result.communicator);
  environment.set_setup_seconds(result.setup_seconds);
  for (int64_t batch : config.batches) {
    RankResult one = result;  // this batch's points only
    one.points.clear();
    for (const RankPointResult& p : result.points) {
      if (p.batch == batch) one.points.push_back(p);
    }
    *out.add_reports() = RankReportFromResult(one, config, context);
  }
  return out;
}

}  // namespace moecap
