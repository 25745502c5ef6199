// What an assignment asks of this agent, checked before anything starts: its ranks and devices,
// its world size against the workload's expert parallelism, the hardware, and the backend/dtype
// rule the plan validator applies too (common/plan/plan.h), then the WorkloadConfig the ranks run.
// Pure: no I/O; errors name the assignment field and why.
#ifndef MOECAP_AGENT_DAEMON_ASSIGNMENT_CHECK_H_
#define MOECAP_AGENT_DAEMON_ASSIGNMENT_CHECK_H_

#include "absl/status/statusor.h"
#include "agent/workload/config.h"
#include "common/catalog.h"
#include "moecap/v1/agent.pb.h"

namespace moecap::agentd {

// `info` is what the agent registered with (its backend and devices); `threads_per_rank` the
// agent's option (0: the device's cores).
absl::StatusOr<WorkloadConfig> CheckAssignment(const v1::Assignment& assignment,
                                               const v1::AgentInfo& info, const Catalog& catalog,
                                               int threads_per_rank);

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_ASSIGNMENT_CHECK_H_
