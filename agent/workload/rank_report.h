// A rank's result (RankResult, from the harness) as the API's RankReport: per phase the step-time
// distribution, the counted bytes and FLOPs (the rank's exact share of METRICS.md's count, via
// common/plan/convert.h), the dense counts, communication, activated experts per layer, the
// expert histogram, the measured loop and the check. Both the agent daemon and moecap-bench send
// their ranks' results through it to the one aggregator (common/aggregate).
#ifndef MOECAP_AGENT_WORKLOAD_RANK_REPORT_H_
#define MOECAP_AGENT_WORKLOAD_RANK_REPORT_H_

#include <string>
#include <vector>

#include "agent/workload/config.h"
#include "agent/workload/harness.h"
#include "moecap/v1/rank.pb.h"
#include "moecap/v1/report.pb.h"

namespace moecap {

struct RankReportContext {
  std::string job_id;
  int point_index = 0;
  int attempt = 0;
  std::string agent_id;
  int device_index = 0;
};

// `config` is the workload the rank ran (its model, scale, layers, dtype and iterations); every
// point of `result` becomes a phase of the report (give it one batch's points).
v1::RankReport RankReportFromResult(const RankResult& result, const WorkloadConfig& config,
                                    const RankReportContext& context);

// What a rank process hands back (RankOutput): its environment and one RankReport per batch size
// of `config`, in its order (each with that batch's phases).
v1::RankOutput RankOutputFromResult(const RankResult& result, const WorkloadConfig& config,
                                    const RankReportContext& context);

// One point's check as the API's.
v1::CheckResult CheckToProto(const CheckResult& check);

// The worst of the points' checks: failed if any failed, the largest errors and tolerance.
v1::CheckResult CheckOf(const std::vector<RankPointResult>& points);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_RANK_REPORT_H_
