// One host's ranks through the cluster's aggregation.
#include "agent/workload/report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/workload/node_report.h"
#include "agent/workload/rank_report.h"
#include "common/aggregate/aggregator.h"
#include "common/plan/convert.h"

namespace moecap {
namespace {

v1::Phase PhaseToProto(ServingPhase phase) {
  return phase == ServingPhase::kPrefill ? v1::PHASE_PREFILL : v1::PHASE_DECODE;
}

std::vector<v1::Device> DevicesOf(const Peaks& peaks, Dtype dtype) {
  std::vector<v1::Device> out;
  for (int i = 0; i < std::max(1, peaks.devices); ++i) {
    v1::Device d;
    d.set_index(i);
    d.set_hardware(peaks.hardware);
    d.set_peak_bandwidth_bytes_per_s(peaks.bandwidth_bytes_s);
    v1::DtypeFlops* flops = d.add_peak_flops();
    flops->set_dtype(DtypeToProto(dtype));
    flops->set_flops_per_s(peaks.flops);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

v1::PointWorkload PointWorkloadOf(const WorkloadConfig& config, int64_t batch, int world_size) {
  v1::PointWorkload w;
  w.set_model(config.model.name);
  *w.mutable_model_spec() = ModelSpecToProto(config.model);
  for (ServingPhase phase : config.phases) w.add_phases(PhaseToProto(phase));
  w.set_batch_size(batch);
  w.set_prompt_len(config.prompt_len);
  w.set_layers(config.layers);
  w.set_scale(config.scale);
  w.set_dtype(DtypeToProto(config.dtype));
  w.set_seed(config.seed);
  w.set_warmup(config.warmup);
  w.set_iterations(config.iterations);
  w.set_check(config.check);
  w.set_expert_parallel(world_size);
  return w;
}

absl::StatusOr<std::vector<v1::PointResult>> AggregateRanks(const WorkloadConfig& config,
                                                            const std::vector<RankResult>& ranks,
                                                            const Peaks& peaks) {
  if (ranks.empty()) return absl::InvalidArgumentError("no rank results to aggregate");
  const int world = ranks.front().world_size;
  for (const RankResult& r : ranks) {
    if (r.world_size != world) {
      return absl::InvalidArgumentError(absl::StrCat("inconsistent rank results: rank ", r.rank,
                                                     " of ", r.world_size, ", rank ",
                                                     ranks.front().rank, " of ", world));
    }
  }
  const std::vector<v1::Device> devices = DevicesOf(peaks, config.dtype);
  std::vector<v1::PointResult> out;
  for (size_t b = 0; b < config.batches.size(); ++b) {
    const int64_t batch = config.batches[b];
    std::vector<v1::RankReport> reports;
    for (const RankResult& r : ranks) {
      RankResult one = r;  // this batch's points only
      one.points.clear();
      for (const RankPointResult& p : r.points) {
        if (p.batch == batch) one.points.push_back(p);
      }
      RankReportContext context;
      context.point_index = static_cast<int>(b);
      context.device_index = r.rank % std::max(1, peaks.devices);
      reports.push_back(RankReportFromResult(one, config, context));
    }
    NodeRun run;
    run.point_index = static_cast<int>(b);
    run.hostname = ranks.front().host;
    run.devices = devices;
    PointAggregationInput in;
    in.point_index = static_cast<int32_t>(b);
    v1::PointParameter parameter;
    parameter.set_name("batch_size");
    parameter.set_value(absl::StrCat(batch));
    in.parameters.push_back(parameter);
    in.workload = PointWorkloadOf(config, batch, world);
    in.nodes.push_back(BuildNodeReport(reports, run));
    absl::StatusOr<v1::PointResult> point = AggregatePoint(in);
    if (!point.ok()) return point.status();
    out.push_back(*std::move(point));
  }
  return out;
}

}  // namespace moecap
