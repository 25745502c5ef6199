// How much memory a plan needs, estimated before anything is allocated, so that a plan that
// cannot fit is refused with the reason instead of dying in the allocator (or the OOM killer).
#ifndef MOECAP_AGENT_WORKLOAD_MEMORY_H_
#define MOECAP_AGENT_WORKLOAD_MEMORY_H_

#include <cstdint>

#include "absl/status/status.h"
#include "agent/workload/config.h"

namespace moecap {

struct MemoryEstimate {
  int64_t weights_per_rank = 0;    // the layer stack's router, shared and local expert weights
  int64_t work_per_rank = 0;       // activations and communication buffers (largest point)
  int64_t reference_per_rank = 0;  // the check's reference (0 without --check)
  int64_t per_rank = 0;            // their sum
  int64_t ranks_on_host = 1;
  int64_t host_total = 0;  // per_rank × ranks_on_host
};

// Precondition: ValidateWorkload(config, world) is OK.
MemoryEstimate EstimateMemory(const WorkloadConfig& config, int world, int ranks_on_host);

// ResourceExhausted, with the figures and what to change, when `estimate.host_total` exceeds 90 %
// of `available_bytes` (the rest is headroom for the allocator, libraries and page cache).
absl::Status CheckMemoryFits(const WorkloadConfig& config, const MemoryEstimate& estimate,
                             int64_t available_bytes);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_MEMORY_H_
