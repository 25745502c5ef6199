// The point an assignment asks for (moecap.v1.PointWorkload, every default applied by the
// coordinator) as the workload engine's WorkloadConfig: one batch size, its phases, routing,
// iterations, check and timeouts. Errors name the PointWorkload field and why it cannot run here.
#ifndef MOECAP_AGENT_DAEMON_WORKLOAD_CONVERT_H_
#define MOECAP_AGENT_DAEMON_WORKLOAD_CONVERT_H_

#include "absl/status/statusor.h"
#include "agent/workload/config.h"
#include "common/catalog.h"
#include "moecap/v1/plan.pb.h"

namespace moecap::agentd {

// `catalog` resolves `model` when `model_spec` is absent. `threads_per_rank` (0: the harness's
// default) is the agent's, not the plan's. The result is not checked against a world size:
// ValidateWorkload does that once the ranks are known.
absl::StatusOr<WorkloadConfig> WorkloadConfigFromPoint(const v1::PointWorkload& point,
                                                       const Catalog& catalog,
                                                       int threads_per_rank);

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_WORKLOAD_CONVERT_H_
