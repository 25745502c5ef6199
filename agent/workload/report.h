// A run of ranks on one host (moecap-bench) aggregated exactly as the coordinator aggregates a
// cluster's: per batch size, the ranks' results become RankReports (rank_report.h) in one
// NodeReport (node_report.h) with the devices and their peaks, and common/aggregate's
// AggregatePoint makes the PointResult. So the bench and a cluster run of the same plan print the
// same figures by the same definitions (METRICS.md "Utilisations"; common/parallel_metrics.h).
#ifndef MOECAP_AGENT_WORKLOAD_REPORT_H_
#define MOECAP_AGENT_WORKLOAD_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/workload/config.h"
#include "agent/workload/harness.h"
#include "moecap/v1/plan.pb.h"
#include "moecap/v1/rank.pb.h"
#include "moecap/v1/report.pb.h"

namespace moecap {

// The denominators: `devices` devices, each with these peaks (a GPU per rank; a CPU host is one
// device all its ranks share). Rank r runs on device r % devices.
struct Peaks {
  double bandwidth_bytes_s = 0;  // per device
  double flops = 0;              // per device, in the run's dtype
  int devices = 1;               // G
  std::string source;            // how the peaks were obtained
  std::string hardware;          // catalog id, when known
};

// Combines the ranks' outputs (one per rank, any order, each with one RankReport per batch size of
// `config`: LocalLauncher's, or RankOutputFromResult's for a rank run in this process) into one
// PointResult per batch size, in the order of config.batches. Fails when the outputs are
// inconsistent (missing or repeated ranks, different points).
absl::StatusOr<std::vector<v1::PointResult>> AggregateRanks(
    const WorkloadConfig& config, const std::vector<v1::RankOutput>& ranks, const Peaks& peaks);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_REPORT_H_
