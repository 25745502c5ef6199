// The entry point of one GPU rank: RunRank's counterpart for the CUDA engine. It sets up the
// backend, the device weights and the engine on one GPU and runs the shared harness (RunPoints),
// so the points, samples, tally and counts mean what the host ranks' do.
#ifndef MOECAP_AGENT_WORKLOAD_CUDA_CUDA_RANK_H_
#define MOECAP_AGENT_WORKLOAD_CUDA_CUDA_RANK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/comm/communicator.h"
#include "agent/workload/config.h"
#include "agent/workload/harness.h"

namespace moecap {

// Runs the plan as rank comm.rank() of comm.size() on CUDA device `device`. `comm` exchanges rows
// in device memory: NCCL (agent/comm/nccl) for several ranks, DeviceLocalCommunicator (whose
// stream this sets to the backend's) or NCCL for one; a host-memory communicator ("local",
// "gloo-tcp") is refused. With config.check, the reference runs on the host (WideningBackend) over
// this rank's weights regenerated there, bit-identical to the device's. Errors as RunRank's (the
// communicator aborted, the rank and point named); a plan that does not fit in the device's free
// memory is ResourceExhausted with the figures.
absl::StatusOr<RankResult> RunCudaRank(const WorkloadConfig& config, const RankContext& context,
                                       Communicator& comm, int device);

// Device bytes the plan needs on each GPU: the rank's weights plus the largest point's buffers;
// decoder layers also the attention weights, the KV caches (bf16) and the attention's scratch,
// whose split-KV workspace depends on the GPU's `sm_count`.
int64_t CudaRankDeviceBytes(const WorkloadConfig& config, int world, int64_t sm_count = 132);

// ResourceExhausted, naming the bytes needed and free, when `needed` exceeds 90 % of
// `free_bytes` (cuBLAS, NCCL and the CUDA context need the rest).
absl::Status CheckDeviceMemoryFits(const WorkloadConfig& config, int device, int64_t needed,
                                   int64_t free_bytes);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_CUDA_CUDA_RANK_H_
