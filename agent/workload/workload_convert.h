// The API's PointWorkload and the workload engine's WorkloadConfig, both ways, in one place: the
// agent turns an assignment's point (every default applied by the coordinator) into the config it
// runs; every launcher hands its rank processes their config as a PointWorkload (RankLaunch,
// proto/moecap/v1/rank.proto); moecap-bench's results name the workload they ran. Errors name the
// PointWorkload field and why it cannot run here.
#ifndef MOECAP_AGENT_WORKLOAD_WORKLOAD_CONVERT_H_
#define MOECAP_AGENT_WORKLOAD_WORKLOAD_CONVERT_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "agent/workload/config.h"
#include "common/catalog.h"
#include "moecap/v1/plan.pb.h"
#include "moecap/v1/rank.pb.h"

namespace moecap {

// One batch size's PointWorkload of `config` on `world_size` ranks (its every phase; the model as
// model_spec; routing and the collective timeout included). WorkloadConfigFromPoint turns it back
// into `config` but for the other batch sizes, the check tolerance and the threads, which
// PointWorkload does not hold.
v1::PointWorkload PointWorkloadOf(const WorkloadConfig& config, int64_t batch, int world_size);

// `catalog` resolves `model` when `model_spec` is absent (null: model_spec is required).
// `threads_per_rank` (0: the harness's default) is the agent's, not the plan's. The result is not
// checked against a world size: ValidateWorkload does that once the ranks are known.
absl::StatusOr<WorkloadConfig> WorkloadConfigFromPoint(const v1::PointWorkload& point,
                                                       const Catalog* catalog,
                                                       int threads_per_rank);

// A rank process's launch carries its run as the PointWorkload of the first batch size plus what
// PointWorkload lacks (every batch size, the tolerance, the threads); these two fill and read
// exactly that part of a RankLaunch (the launcher sets the rest), and
// SetLaunchWorkload(c, n, l) then WorkloadOfLaunch(l) is c again.
void SetLaunchWorkload(const WorkloadConfig& config, int world_size, v1::RankLaunch& launch);
absl::StatusOr<WorkloadConfig> WorkloadOfLaunch(const v1::RankLaunch& launch);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_WORKLOAD_CONVERT_H_
