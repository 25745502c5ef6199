// One host's ranks through the cluster's aggregation.
#include "agent/workload/report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/workload/node_report.h"
#include "agent/workload/rank_report.h"
#include "agent/workload/workload_convert.h"
#include "common/aggregate/aggregator.h"
#include "common/plan/convert.h"

namespace moecap {
namespace {

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

absl::StatusOr<std::vector<v1::PointResult>> AggregateRanks(
    const WorkloadConfig& config, const std::vector<v1::RankOutput>& ranks, const Peaks& peaks) {
  if (ranks.empty()) return absl::InvalidArgumentError("no rank results to aggregate");
  for (const v1::RankOutput& r : ranks) {
    if (r.reports_size() != static_cast<int>(config.batches.size())) {
      return absl::InvalidArgumentError(absl::StrCat("rank ", r.rank(), " reported ",
                                                     r.reports_size(), " batch size(s) of ",
                                                     config.batches.size()));
    }
  }
  const int world = static_cast<int>(ranks.size());
  const std::vector<v1::Device> devices = DevicesOf(peaks, config.dtype);
  std::vector<v1::PointResult> out;
  for (size_t b = 0; b < config.batches.size(); ++b) {
    const int64_t batch = config.batches[b];
    std::vector<v1::RankReport> reports;
    for (const v1::RankOutput& r : ranks) {
      v1::RankReport report = r.reports(static_cast<int>(b));
      report.set_point_index(static_cast<int>(b));
      // The bench's device layout: rank r on device r % G (a CPU host is one device).
      report.set_device_index(report.rank() % std::max(1, peaks.devices));
      reports.push_back(std::move(report));
    }
    NodeRun run;
    run.point_index = static_cast<int>(b);
    run.hostname = ranks.front().environment().host();
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
