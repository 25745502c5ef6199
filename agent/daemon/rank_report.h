// A rank's result (RankResult, from the harness) as the API's RankReport: per phase the step-time
// distribution, the counted bytes and FLOPs (the rank's exact share of METRICS.md's count, via
// common/plan/convert.h), the dense counts, communication, activated experts per layer, imbalance
// and the expert histogram; plus the check. And how a failed run maps onto a FailureKind.
#ifndef MOECAP_AGENT_DAEMON_RANK_REPORT_H_
#define MOECAP_AGENT_DAEMON_RANK_REPORT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/workload/config.h"
#include "agent/workload/harness.h"
#include "moecap/v1/agent_service.pb.h"
#include "moecap/v1/report.pb.h"

namespace moecap::agentd {

struct RankReportContext {
  std::string job_id;
  int point_index = 0;
  int attempt = 0;
  std::string agent_id;
  int device_index = 0;
};

// `config` is the workload the rank ran (its model, scale, layers, dtype and iterations).
v1::RankReport RankReportFromResult(const RankResult& result, const WorkloadConfig& config,
                                    const RankReportContext& context);

// The worst of the points' checks: failed if any failed, the largest errors and tolerance.
v1::CheckResult CheckOf(const std::vector<RankPointResult>& points);

struct FailureClass {
  v1::FailureKind kind = v1::FAILURE_KIND_INTERNAL;
  bool retryable = true;  // whether another attempt (maybe elsewhere) may succeed
};

// The kind of a failed assignment from the status its run ended with: Cancelled -> CANCELLED;
// plan errors (InvalidArgument, FailedPrecondition, Unimplemented, OutOfRange) -> SETUP;
// ResourceExhausted -> RESOURCES; anything about the rendezvous -> RENDEZVOUS; the launcher's
// overall deadline -> TIMEOUT; a lost peer or a collective timeout (Unavailable,
// DeadlineExceeded, Aborted) -> COLLECTIVE; the rest (a crashed rank) -> INTERNAL.
FailureClass ClassifyFailure(const absl::Status& status);

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_RANK_REPORT_H_
