// Cluster aggregation of rank results.
#include "agent/workload/report.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace moecap {
namespace {

bool SameCounts(const Counts& a, const Counts& b) {
  for (Term t : kAllTerms) {
    if (a[t].bytes != b[t].bytes || a[t].flops != b[t].flops) return false;
  }
  return true;
}

double Sum(const std::vector<double>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0);
}

CommBandwidth Bandwidth(const std::vector<const RankPointResult*>& points, double seconds,
                        double transfer_seconds, bool dispatch) {
  CommBandwidth bw;
  bw.seconds = seconds;
  bw.transfer_seconds = transfer_seconds;
  double busiest_logical = 0;
  double busiest_remote = 0;
  for (const RankPointResult* p : points) {
    const CommBytes& c = p->counts.comm;
    const double logical = dispatch ? c.dispatch_logical : c.combine_logical;
    const double remote = dispatch ? c.dispatch_remote : c.combine_remote;
    bw.logical_bytes += logical;
    bw.remote_bytes += remote;
    busiest_logical = std::max(busiest_logical, logical);
    busiest_remote = std::max(busiest_remote, remote);
  }
  const double n = static_cast<double>(points.size());
  if (seconds > 0) {
    bw.algbw = busiest_logical / seconds;
    bw.busbw = bw.algbw * (n - 1) / n;
    bw.remote_bw = busiest_remote / seconds;
  }
  if (transfer_seconds > 0) {
    bw.transfer_algbw = busiest_logical / transfer_seconds;
    bw.transfer_remote_bw = busiest_remote / transfer_seconds;
  }
  return bw;
}

nlohmann::json BandwidthToJson(const CommBandwidth& b) {
  return {{"logical_bytes", b.logical_bytes},
          {"remote_bytes", b.remote_bytes},
          {"seconds", b.seconds},
          {"algbw_bytes_s", b.algbw},
          {"busbw_bytes_s", b.busbw},
          {"remote_bw_bytes_s", b.remote_bw},
          {"transfer_seconds", b.transfer_seconds},
          {"transfer_algbw_bytes_s", b.transfer_algbw},
          {"transfer_remote_bw_bytes_s", b.transfer_remote_bw}};
}

}  // namespace

absl::StatusOr<std::vector<PointReport>> AggregateRanks(const WorkloadConfig& config,
                                                        const std::vector<RankResult>& ranks,
                                                        const Peaks& peaks) {
  if (ranks.empty()) return absl::InvalidArgumentError("no rank results to aggregate");
  const int world = ranks.front().world_size;
  std::vector<const RankResult*> by_rank(static_cast<size_t>(world), nullptr);
  for (const RankResult& r : ranks) {
    if (r.world_size != world || r.rank < 0 || r.rank >= world || by_rank[r.rank] != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("inconsistent rank results: rank ", r.rank,
                                                     " of ", r.world_size, " (expected ", world,
                                                     " distinct ranks)"));
    }
    by_rank[r.rank] = &r;
  }
  for (int r = 0; r < world; ++r) {
    if (by_rank[r] == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("the result of rank ", r, " is missing"));
    }
    if (by_rank[r]->points.size() != by_rank[0]->points.size()) {
      return absl::InvalidArgumentError(absl::StrCat("rank ", r, " reports ",
                                                     by_rank[r]->points.size(), " points, rank 0 ",
                                                     by_rank[0]->points.size()));
    }
  }
  const ModelSpec scaled = ScaledModel(config.model, config.scale);
  const Precision precision = MakePrecision(config.dtype);
  std::vector<PointReport> reports;
  for (size_t i = 0; i < by_rank[0]->points.size(); ++i) {
    std::vector<const RankPointResult*> points;
    for (int r = 0; r < world; ++r) {
      const RankPointResult& p = by_rank[r]->points[i];
      if (p.phase != by_rank[0]->points[i].phase || p.batch != by_rank[0]->points[i].batch) {
        return absl::InvalidArgumentError(
            absl::StrCat("rank ", r, " point ", i, " is not the same point as rank 0's"));
      }
      points.push_back(&p);
    }
    const RankPointResult& first = *points.front();
    PointReport rep;
    rep.phase = first.phase;
    rep.batch = first.batch;
    rep.tokens = first.tokens;
    rep.ranks = world;

    const auto slowest = [&](std::vector<double> PhaseSamples::*field) {
      std::vector<const std::vector<double>*> series;
      for (const RankPointResult* p : points) series.push_back(&(p->samples.*field));
      return ElementwiseMax(series);
    };
    rep.step = Summarize(slowest(&PhaseSamples::step));
    rep.gate = Summarize(slowest(&PhaseSamples::gate));
    rep.dispatch = Summarize(slowest(&PhaseSamples::dispatch));
    rep.experts = Summarize(slowest(&PhaseSamples::experts));
    rep.combine = Summarize(slowest(&PhaseSamples::combine));

    rep.routing = SummarizeRouting(first.global_histogram);
    for (const RankPointResult* p : points) rep.counted += p->counts.counted;
    rep.metric_core = CountMoeBlocks(scaled, precision, static_cast<double>(config.layers),
                                     static_cast<double>(rep.tokens), rep.routing.activated_sum);
    rep.dense = CountMoeBlocks(scaled, precision, static_cast<double>(config.layers),
                               static_cast<double>(rep.tokens), rep.routing.activated_sum,
                               Counting::kDense);
    rep.counts_match = SameCounts(rep.counted, rep.metric_core);

    const double t = rep.step.mean;
    if (t > 0) {
      rep.bytes_per_s = rep.counted.bytes() / t;
      rep.flops_per_s = rep.counted.flops() / t;
    }
    if (t > 0 && peaks.bandwidth_bytes_s > 0) {
      rep.s_mbu = Utilization(rep.counted.bytes(), t, peaks.devices, peaks.bandwidth_bytes_s);
      rep.dense_mbu = Utilization(rep.dense.bytes(), t, peaks.devices, peaks.bandwidth_bytes_s);
    }
    if (t > 0 && peaks.flops > 0) {
      rep.s_mfu = Utilization(rep.counted.flops(), t, peaks.devices, peaks.flops);
      rep.dense_mfu = Utilization(rep.dense.flops(), t, peaks.devices, peaks.flops);
    }
    const auto fastest_mean = [&](std::vector<double> PhaseSamples::*field) {
      std::vector<const std::vector<double>*> series;
      for (const RankPointResult* p : points) series.push_back(&(p->samples.*field));
      return Summarize(ElementwiseMin(series)).mean;
    };
    rep.dispatch_bw = Bandwidth(points, rep.dispatch.mean, fastest_mean(&PhaseSamples::dispatch),
                                /*dispatch=*/true);
    rep.combine_bw = Bandwidth(points, rep.combine.mean, fastest_mean(&PhaseSamples::combine),
                               /*dispatch=*/false);

    rep.harness_overhead = 1;
    rep.check.ran = first.check.ran;
    rep.check.passed = true;
    rep.per_rank = nlohmann::json::array();
    for (int r = 0; r < world; ++r) {
      const RankPointResult& p = *points[r];
      const double steps = Sum(p.samples.step);
      if (p.loop_seconds > 0) {
        rep.harness_overhead = std::min(rep.harness_overhead, 1 - steps / p.loop_seconds);
      }
      const CheckResult& c = p.check;
      rep.check.passed = rep.check.passed && (!c.ran || c.passed);
      rep.check.max_abs_error = std::max(rep.check.max_abs_error, c.max_abs_error);
      rep.check.max_rel_error = std::max(rep.check.max_rel_error, c.max_rel_error);
      rep.check.tolerance = c.tolerance;
      rep.check.near_ties += c.near_ties;
      rep.check.routing_mismatches += c.routing_mismatches;
      const double n = std::max<double>(1, p.samples.step.size());
      rep.per_rank.push_back({
          {"rank", r},
          {"own_tokens", p.tally.own_tokens},
          {"pairs_computed", p.tally.pairs_computed},
          {"local_activated_sum", p.tally.local_activated_sum},
          {"counted", CountsToJson(p.counts.counted)},
          {"physical", CountsToJson(p.counts.physical)},
          {"activation_bytes", p.counts.activation_bytes},
          {"comm_bytes", CommBytesToJson(p.counts.comm)},
          {"mean_seconds",
           {{"step", steps / n},
            {"gate", Sum(p.samples.gate) / n},
            {"dispatch", Sum(p.samples.dispatch) / n},
            {"experts", Sum(p.samples.experts) / n},
            {"combine", Sum(p.samples.combine) / n}}},
          {"check",
           {{"passed", !c.ran || c.passed},
            {"max_abs_error", c.max_abs_error},
            {"max_rel_error", c.max_rel_error}}},
      });
    }
    if (rep.harness_overhead == 1) rep.harness_overhead = 0;
    if (!rep.check.ran) rep.check.passed = false;
    reports.push_back(std::move(rep));
  }
  return reports;
}

nlohmann::json PointReportToJson(const PointReport& p) {
  return {
      {"phase", ServingPhaseName(p.phase)},
      {"batch", p.batch},
      {"tokens", p.tokens},
      {"ranks", p.ranks},
      {"seconds",
       {{"step", SummaryToJson(p.step)},
        {"gate", SummaryToJson(p.gate)},
        {"dispatch", SummaryToJson(p.dispatch)},
        {"experts", SummaryToJson(p.experts)},
        {"combine", SummaryToJson(p.combine)}}},
      {"counted", CountsToJson(p.counted)},
      {"metric_core", CountsToJson(p.metric_core)},
      {"dense", CountsToJson(p.dense)},
      {"counts_match_metric_core", p.counts_match},
      {"routing",
       {{"activated_experts_per_layer", p.routing.activated_per_layer},
        {"activated_experts_sum", p.routing.activated_sum},
        {"imbalance_per_layer", p.routing.imbalance_per_layer},
        {"imbalance_max", p.routing.max_imbalance}}},
      {"dispatch", BandwidthToJson(p.dispatch_bw)},
      {"combine", BandwidthToJson(p.combine_bw)},
      {"bytes_per_s", p.bytes_per_s},
      {"flops_per_s", p.flops_per_s},
      {"s_mbu", p.s_mbu},
      {"s_mfu", p.s_mfu},
      {"dense_mbu", p.dense_mbu},
      {"dense_mfu", p.dense_mfu},
      {"harness_overhead", p.harness_overhead},
      {"check",
       {{"ran", p.check.ran},
        {"passed", p.check.passed},
        {"max_abs_error", p.check.max_abs_error},
        {"max_rel_error", p.check.max_rel_error},
        {"tolerance", p.check.tolerance},
        {"near_ties", p.check.near_ties},
        {"routing_mismatches", p.check.routing_mismatches}}},
      {"per_rank", p.per_rank},
  };
}

}  // namespace moecap
