// Aggregation of the ranks' results into the cluster's figures per point, as the coordinator
// will aggregate per-node reports: total counted bytes and FLOPs of all ranks over the slowest
// rank's time and the sum of the devices' peaks (METRICS.md "Utilisations"), plus percentiles,
// communication bandwidths, routing statistics and the check.
#ifndef MOECAP_AGENT_WORKLOAD_REPORT_H_
#define MOECAP_AGENT_WORKLOAD_REPORT_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/workload/config.h"
#include "agent/workload/counting.h"
#include "agent/workload/harness.h"
#include "agent/workload/router.h"
#include "common/metrics.h"
#include "common/stats.h"

namespace moecap {

// The denominators: one device per rank (on a CPU host, a rank's share of the host: the host's
// peaks divided by the ranks on it), `devices` of them.
struct Peaks {
  double bandwidth_bytes_s = 0;  // per device
  double flops = 0;              // per device, in the run's dtype
  double devices = 1;            // G
  std::string source;            // how the peaks were obtained
};

// The phase's time includes packing and the count exchange, and on most ranks waiting for peers
// that reach the collective later. Two time bases are given: the slowest rank's (what the step
// pays) and the fastest rank's (the rank that arrives last hardly waits, so its time approximates
// the exchange itself; the basis to compare with a link's bandwidth).
struct CommBandwidth {
  double logical_bytes = 0;       // all ranks, per step
  double remote_bytes = 0;        // all ranks, per step, without self-sends
  double seconds = 0;             // mean over iterations of the slowest rank's phase time
  double algbw = 0;               // nccl-tests: the busiest rank's logical bytes / seconds
  double busbw = 0;               // algbw · (n − 1) / n
  double remote_bw = 0;           // the busiest rank's remote bytes / seconds (DeepEP, issue #51)
  double transfer_seconds = 0;    // mean over iterations of the fastest rank's phase time
  double transfer_algbw = 0;      // the busiest rank's logical bytes / transfer_seconds
  double transfer_remote_bw = 0;  // the busiest rank's remote bytes / transfer_seconds
};

struct CheckSummary {
  bool ran = false;
  bool passed = false;  // every rank passed
  double max_abs_error = 0;
  double max_rel_error = 0;
  double tolerance = 0;
  int64_t near_ties = 0;
  int64_t routing_mismatches = 0;
};

struct PointReport {
  ServingPhase phase = ServingPhase::kDecode;
  int64_t batch = 0;
  int64_t tokens = 0;
  int ranks = 0;
  // Per measured iteration, the slowest rank's time; then summarised.
  Summary step;
  Summary gate;
  Summary dispatch;
  Summary experts;
  Summary combine;
  Counts counted;             // Σ over ranks of their counted shares
  Counts metric_core;         // CountMoeBlocks for the run's tokens and measured Σ_l A_l
  Counts dense;               // the same with every expert (dense MBU/MFU, for contrast)
  bool counts_match = false;  // counted == metric_core, term by term, exactly
  RoutingStats routing;
  CommBandwidth dispatch_bw;
  CommBandwidth combine_bw;
  double bytes_per_s = 0;  // counted bytes / mean step time
  double flops_per_s = 0;
  double s_mbu = 0;
  double s_mfu = 0;
  double dense_mbu = 0;
  double dense_mfu = 0;
  // Share of the measured loop not inside a timed step (barriers, bookkeeping), on the rank where
  // it is smallest (the slowest rank, which hardly waits at the barriers).
  double harness_overhead = 0;
  CheckSummary check;
  nlohmann::json per_rank;  // a row per rank: tokens, pairs, counts, mean phase times
};

// Combines the ranks' results (one per rank, any order) point by point. Fails when the results
// are inconsistent (missing ranks, different points).
absl::StatusOr<std::vector<PointReport>> AggregateRanks(const WorkloadConfig& config,
                                                        const std::vector<RankResult>& ranks,
                                                        const Peaks& peaks);

nlohmann::json PointReportToJson(const PointReport& point);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_REPORT_H_
