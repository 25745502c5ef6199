// The GPU counterpart of ConnectAndRunRank (agent/workload/launcher.h): a rank process of a
// "cuda" job picks its GPU, joins the job's NCCL communicator through the job's store and runs
// the expert-parallel layer on the GPU (RunCudaRank). moecap-bench and moecap-agent install it as
// their WorkerHooks::run_rank when built with CUDA.
#ifndef MOECAP_AGENT_COMM_NCCL_NCCL_RANK_H_
#define MOECAP_AGENT_COMM_NCCL_NCCL_RANK_H_

#include "absl/status/statusor.h"
#include "agent/comm/kv_store.h"
#include "agent/workload/config.h"
#include "agent/workload/harness.h"
#include "agent/workload/launcher.h"

namespace moecap {

// Runs on device options.device modulo the host's device count (one rank per GPU; NCCL refuses
// two ranks of one communicator on one GPU, so more ranks than GPUs fails at the rendezvous).
// A world of one rank uses DeviceLocalCommunicator ("cuda-local": its exchange is a copy in the
// engine's stream order); larger worlds NCCL ("nccl").
// The rendezvous and every collective are bounded by config.comm_timeout_s. FailedPrecondition
// when the host has no CUDA device.
absl::StatusOr<RankResult> ConnectNcclAndRunCudaRank(const WorkloadConfig& config, int rank,
                                                     int world, KvStore& store,
                                                     const RankJoinOptions& options);

// The worker hook both binaries use: "cuda" runs ConnectNcclAndRunCudaRank, "cpu" the CPU path
// (ConnectAndRunRank), anything else is refused.
absl::StatusOr<RankResult> RunRankOnBackend(const WorkloadConfig& config, int rank, int world,
                                            KvStore& store, const RankJoinOptions& options);

}  // namespace moecap

#endif  // MOECAP_AGENT_COMM_NCCL_NCCL_RANK_H_
