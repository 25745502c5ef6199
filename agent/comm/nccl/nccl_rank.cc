// ConnectNcclAndRunCudaRank: device choice, NCCL rendezvous, the GPU layer.
#include "agent/comm/nccl/nccl_rank.h"

#include "absl/strings/str_cat.h"
#include "agent/comm/nccl/nccl_communicator.h"
#include "agent/compute/energy_meter.h"
#include "agent/compute/gpu_discovery.h"
#include "agent/workload/cuda/cuda_rank.h"
#include "agent/workload/cuda/device_local_communicator.h"
#include "common/failure_cause.h"

namespace moecap {

absl::StatusOr<RankResult> ConnectNcclAndRunCudaRank(const WorkloadConfig& config, int rank,
                                                     int world, KvStore& store,
                                                     const RankJoinOptions& options) {
  std::string why_none;
  const int devices = CudaDeviceCount(&why_none);
  if (devices == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rank ", rank, ": the cuda backend needs a GPU, and this host has none (", why_none, ")"));
  }
  const int device = ((options.device % devices) + devices) % devices;
  RankContext context;
  context.ranks_on_host = options.ranks_on_host;
  context.progress = options.progress;
  context.log = options.log;
  // The GPU's own counter (NVML indexes it as CUDA does unless CUDA_VISIBLE_DEVICES reorders).
  std::unique_ptr<EnergyMeter> energy =
      OpenNvmlEnergyMeter(kNvmlLibrary, device, &context.energy_unavailable);
  context.energy = energy.get();
  if (world == 1) {
    // One rank exchanges with itself only: a copy in the engine's stream order, no NCCL.
    DeviceLocalCommunicator local;
    return RunCudaRank(config, context, local, device);
  }
  NcclOptions nccl;
  nccl.rank = rank;
  nccl.size = world;
  nccl.device = device;
  nccl.key_prefix = options.key_prefix;
  nccl.timeout = absl::Seconds(config.comm_timeout_s);
  absl::StatusOr<std::unique_ptr<Communicator>> comm = ConnectNccl(store, nccl);
  if (!comm.ok()) return WithFailureCause(comm.status(), FailureCause::kRendezvous);
  if (context.log) {
    context.log(absl::StrCat("nccl communicator ready on device ", device, " (rank ", rank, " of ",
                             world, ")"));
  }
  return RunCudaRank(config, context, **comm, device);
}

absl::StatusOr<RankResult> RunRankOnBackend(const WorkloadConfig& config, int rank, int world,
                                            KvStore& store, const RankJoinOptions& options) {
  if (options.backend == v1::BACKEND_CUDA) {
    return ConnectNcclAndRunCudaRank(config, rank, world, store, options);
  }
  if (options.backend == v1::BACKEND_CPU) {
    return ConnectAndRunRank(config, rank, world, store, options);
  }
  return absl::InvalidArgumentError(absl::StrCat("backend ", v1::Backend_Name(options.backend),
                                                 ": not one this worker runs (cpu, cuda)"));
}

}  // namespace moecap
