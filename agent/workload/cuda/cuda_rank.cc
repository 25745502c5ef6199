// RunCudaRank: one GPU rank on the shared harness.
#include "agent/workload/cuda/cuda_rank.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/compute/cuda/cuda_backend.h"
#include "agent/compute/cuda/cuda_device.h"
#include "agent/compute/host_probe.h"
#include "agent/compute/widening_backend.h"
#include "agent/workload/cuda/cuda_attention.h"
#include "agent/workload/cuda/cuda_moe_engine.h"
#include "agent/workload/cuda/cuda_moe_weights.h"
#include "agent/workload/cuda/device_local_communicator.h"
#include "agent/workload/memory.h"
#include "agent/workload/weights.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string GiB(int64_t bytes) {
  return absl::StrFormat("%.2f GiB", static_cast<double>(bytes) / (1LL << 30));
}

// Gives a DeviceLocalCommunicator back its null stream when the backend (and its stream) goes.
class StreamReset {
 public:
  explicit StreamReset(DeviceLocalCommunicator* comm) : comm_(comm) {}
  ~StreamReset() {
    if (comm_ != nullptr) comm_->set_stream(nullptr);
  }
  StreamReset(const StreamReset&) = delete;
  StreamReset& operator=(const StreamReset&) = delete;

 private:
  DeviceLocalCommunicator* comm_;
};

}  // namespace

int64_t CudaRankDeviceBytes(const WorkloadConfig& config, int world, int64_t sm_count) {
  const ModelSpec scaled = ScaledModel(config.model, config.scale);
  const bool decoder = config.layer == LayerKind::kDecoder;
  int64_t work = 0;
  for (ServingPhase phase : config.phases) {
    for (int64_t batch : config.batches) {
      const int64_t tokens = TokensPerStep(config, phase, batch);
      // Rank 0 has the most tokens (and, decoder layers, the most sequences).
      const int64_t own = RankRows(config, phase, batch, 0, world).count;
      int64_t point = CudaExpertParallelMoe::WorkBytes(scaled, config.dtype, config.layers, own,
                                                       tokens, world, 0, decoder);
      if (decoder) {
        point += CudaAttentionStack::DeviceBytes(
            scaled, config.layers, RankSequences(config, phase, batch, 0, world), sm_count);
      }
      work = std::max(work, point);
    }
  }
  const int64_t attention_weights =
      decoder ? AttentionWeights::Bytes(scaled, config.layers, config.dtype) : 0;
  return MoeWeights::BytesPerRank(scaled, config.layers, config.dtype, scaled.experts / world) +
         attention_weights + work;
}

absl::Status CheckDeviceMemoryFits(const WorkloadConfig& config, int device, int64_t needed,
                                   int64_t free_bytes) {
  const int64_t usable = free_bytes / 10 * 9;
  if (needed <= usable) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "the plan does not fit in GPU memory: it needs about ", GiB(needed), " (", needed,
      " bytes) on device ", device, " for ", config.layers, " layer(s) of ", config.model.name,
      " at scale 1/", config.scale, " in ", DtypeName(config.dtype), ", but only ", GiB(free_bytes),
      " (", free_bytes, " bytes) is free (90% usable); ",
      "use fewer --layers, a larger --scale, more ranks, smaller --batch or --prompt-len"));
}

absl::StatusOr<RankResult> RunCudaRank(const WorkloadConfig& config, const RankContext& context,
                                       Communicator& comm, int device) {
  const auto fail = [&](const absl::Status& status, absl::string_view where) {
    return FailRank(comm, status, where);
  };
  if (absl::Status s = ValidateWorkload(config, comm.size()); !s.ok()) return fail(s, "");
  const ModelSpec scaled = ScaledModel(config.model, config.scale);
  const bool decoder = config.layer == LayerKind::kDecoder;
  if (decoder) {
    if (absl::Status s = CudaAttentionSupported(scaled, config.dtype); !s.ok()) return fail(s, "");
    if (config.lm_head || config.dense_layers > 0) {
      return fail(absl::InvalidArgumentError(absl::StrCat(
                      config.lm_head ? "workload.lm_head" : "workload.dense_layers",
                      ": the GPU engine's decoder layer runs attention and the MoE blocks only; "
                      "the LM head and dense layers run on the cpu backend only for now")),
                  "");
    }
  }
  if (comm.memory() != CommMemory::kDevice) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
                    "communicator \"", comm.name(),
                    "\" exchanges host memory; the GPU engine needs one on device memory "
                    "(nccl, cuda-local)")),
                "");
  }
  if (absl::Status s = cuda::CudaDevicePresent(); !s.ok()) return fail(s, "");
  absl::StatusOr<std::unique_ptr<cuda::CudaBackend>> created = cuda::CudaBackend::Create(device);
  if (!created.ok()) return fail(created.status(), absl::StrCat(", device ", device));
  cuda::CudaBackend& backend = **created;
  if (absl::Status s = backend.CheckDtype(config.dtype); !s.ok()) return fail(s, "");

  CudaEngineOptions options;
  DeviceLocalCommunicator* device_local = dynamic_cast<DeviceLocalCommunicator*>(&comm);
  const StreamReset stream_reset(device_local);
  if (device_local != nullptr) {
    device_local->set_stream(backend.stream());
    options.comm_on_engine_stream = true;
  }

  const HostInfo host = GetHostInfo();
  size_t free_bytes = 0;
  size_t total_bytes = 0;
  if (absl::Status s = backend.MakeCurrent(); !s.ok()) return fail(s, "");
  if (absl::Status s = cuda::CudaCheck(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
      !s.ok()) {
    return fail(s, "");
  }
  int sm_count = 0;
  if (absl::Status s = cuda::CudaCheck(
          cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, backend.device()),
          "cudaDeviceGetAttribute(multiprocessors)");
      !s.ok()) {
    return fail(s, "");
  }
  if (absl::Status s =
          CheckDeviceMemoryFits(config, device, CudaRankDeviceBytes(config, comm.size(), sm_count),
                                static_cast<int64_t>(free_bytes));
      !s.ok()) {
    return fail(s, "");
  }
  if (config.check) {
    // The reference lives in host memory: this rank's weights and the reference's buffers.
    MemoryEstimate estimate = EstimateMemory(config, comm.size(), 1);
    estimate.work_per_rank = 0;
    estimate.per_rank = estimate.weights_per_rank + estimate.reference_per_rank;
    estimate.ranks_on_host = std::max(1, context.ranks_on_host);
    estimate.host_total = estimate.per_rank * estimate.ranks_on_host;
    if (absl::StatusOr<int64_t> available = MemAvailableBytes(); available.ok()) {
      if (absl::Status s = CheckMemoryFits(config, estimate, *available); !s.ok()) {
        return fail(s, ": the check's host reference");
      }
    }
  }

  RankResult result = StartRankResult(comm, backend, host.hostname);

  const Range local = RankExperts(scaled.experts, comm.rank(), comm.size());
  const Clock::time_point setup = Clock::now();
  absl::StatusOr<CudaMoeWeights> weights =
      CudaMoeWeights::Generate(backend, scaled, config.layers, config.dtype, config.seed, local);
  if (!weights.ok()) return fail(weights.status(), ": generating weights on the GPU");
  result.setup_seconds = Since(setup);
  if (context.log) {
    context.log(absl::StrCat("weights ready on GPU ", device, " (", result.setup_seconds, " s)"));
  }

  // The check's host side: the same weights, regenerated in host memory, and a host backend that
  // computes bf16 GEMMs exactly as bf16 operands with fp32 accumulation.
  std::optional<WideningBackend> host_backend;
  std::optional<MoeWeights> host_weights;
  ReferenceModel reference;
  if (config.check) {
    const int threads = config.threads_per_rank > 0
                            ? config.threads_per_rank
                            : std::max(1, host.cores / std::max(1, context.ranks_on_host));
    host_backend.emplace(threads);
    absl::StatusOr<MoeWeights> generated = MoeWeights::Generate(
        *host_backend, scaled, config.layers, config.dtype, config.seed, local);
    if (!generated.ok()) return fail(generated.status(), ": generating the reference's weights");
    host_weights.emplace(*std::move(generated));
    reference.backend = &*host_backend;
    reference.weights = &*host_weights;
  }

  // Decoder layers: the attention weights on every rank (generated on the host as the CPU engine
  // does, so the check's ReferenceAttention regenerates them), the caches per point.
  std::optional<CudaAttentionStack> attention;
  if (decoder) {
    absl::StatusOr<CudaAttentionStack> created_attention =
        CudaAttentionStack::Create(scaled, config.layers, config.dtype, config.seed, backend);
    if (!created_attention.ok()) {
      return fail(created_attention.status(), ": generating attention weights on the GPU");
    }
    attention.emplace(*std::move(created_attention));
  }

  CudaExpertParallelMoe engine(scaled, *weights, backend, comm, options);
  if (attention) engine.SetAttention(&*attention);
  // The harness prepares the attention per point and, with a check, hands the point's sequences
  // to CheckAgainstReference, which recomputes the attention on the host (ReferenceAttention).
  MOECAP_RETURN_IF_ERROR(RunPoints(config, context, comm, engine, attention ? &*attention : nullptr,
                                   reference, result));
  return result;
}

}  // namespace moecap
