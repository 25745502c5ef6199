// moecap-bench --backend cuda: pre-flight checks, GPU peaks, and the GPU performance self-check.
#include "agent/bench/cuda_bench.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/comm/nccl/nccl_communicator.h"
#include "agent/compute/cuda/attention_kernels.h"
#include "agent/compute/cuda/attention_plan.h"
#include "agent/compute/cuda/cuda_backend.h"
#include "agent/compute/cuda/cuda_device.h"
#include "agent/compute/cuda/cuda_probes.h"
#include "agent/compute/gpu_discovery.h"
#include "agent/compute/host_probe.h"
#include "agent/workload/cuda/cuda_rank.h"
#include "agent/workload/cuda/device_local_communicator.h"
#include "agent/workload/harness.h"
#include "agent/workload/rank_report.h"
#include "common/status_macros.h"

namespace moecap {

absl::Status CheckCudaRun(const WorkloadConfig& config, int ranks) {
  std::string why;
  const int devices = CudaDeviceCount(&why);
  if (devices == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("--backend cuda: this host has no usable CUDA device (", why, ")"));
  }
  if (ranks > devices) {
    return absl::FailedPreconditionError(absl::StrCat("--backend cuda --ranks ", ranks,
                                                      ": NCCL runs one rank per GPU and this "
                                                      "host has ",
                                                      devices, " CUDA device(s)"));
  }
  if (config.dtype != Dtype::kFp32 && config.dtype != Dtype::kBf16) {
    return absl::UnimplementedError(absl::StrCat("--backend cuda --dtype ", DtypeName(config.dtype),
                                                 ": the GPU engine runs fp32 and bf16"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Peaks> GpuPeaks(const Catalog& catalog, const GpuPeakRequest& request) {
  Peaks peaks;
  peaks.devices = request.ranks;
  const HardwareSpec* hw = nullptr;
  std::string hw_origin;
  if (!request.hardware.empty()) {
    absl::StatusOr<const HardwareSpec*> found = catalog.FindHardware(request.hardware);
    if (!found.ok()) return found.status();
    hw = *found;
    hw_origin = absl::StrCat("hardware catalog (", hw->name, ")");
  } else if (absl::StatusOr<GpuDiscovery> gpus = DiscoverGpus(catalog);
             gpus.ok() && !gpus->gpus.empty()) {
    hw = MatchGpuHardware(catalog, gpus->gpus.front().name);
    if (hw != nullptr) {
      hw_origin = absl::StrCat("hardware catalog (", hw->name, ", matched by the NVML name '",
                               gpus->gpus.front().name, "')");
    }
  }
  // Probes run on GPU 0 only when a figure is neither given nor in the catalog.
  std::unique_ptr<cuda::CudaBackend> backend;
  const auto probe_backend = [&]() -> absl::StatusOr<cuda::CudaBackend*> {
    if (backend == nullptr) {
      absl::StatusOr<std::unique_ptr<cuda::CudaBackend>> made = cuda::CudaBackend::Create(0);
      if (!made.ok()) return made.status();
      backend = *std::move(made);
    }
    return backend.get();
  };
  std::string bw_source, flops_source;
  if (request.peak_bandwidth_gb_s > 0) {
    peaks.bandwidth_bytes_s = request.peak_bandwidth_gb_s * 1e9;
    bw_source = "bandwidth given (--peak-bandwidth-gb-s)";
  } else if (hw != nullptr && hw->peak_bandwidth_bytes_s > 0) {
    peaks.bandwidth_bytes_s = hw->peak_bandwidth_bytes_s;
    bw_source = absl::StrCat("bandwidth from the ", hw_origin);
  } else {
    absl::StatusOr<cuda::CudaBackend*> b = probe_backend();
    if (!b.ok()) return b.status();
    absl::StatusOr<double> probed = cuda::ProbeCopyBandwidth(**b);
    if (!probed.ok()) return probed.status();
    peaks.bandwidth_bytes_s = *probed;
    bw_source = "bandwidth probed (device copy on GPU 0, read + write)";
  }
  if (request.peak_tflops > 0) {
    peaks.flops = request.peak_tflops * 1e12;
    flops_source = "FLOP/s given (--peak-tflops)";
  } else if (absl::StatusOr<double> flops =
                 hw != nullptr ? PeakFlops(*hw, request.dtype) : absl::NotFoundError("");
             flops.ok() && *flops > 0) {
    peaks.flops = *flops;
    flops_source = absl::StrCat(DtypeName(request.dtype), " FLOP/s from the ", hw_origin);
  } else {
    absl::StatusOr<cuda::CudaBackend*> b = probe_backend();
    if (!b.ok()) return b.status();
    absl::StatusOr<double> probed = cuda::ProbeGemmFlops(**b, request.dtype);
    if (!probed.ok()) return probed.status();
    peaks.flops = *probed;
    flops_source = absl::StrCat(DtypeName(request.dtype), " FLOP/s probed (cuBLAS GEMM on GPU 0)");
  }
  peaks.source = absl::StrCat(bw_source, "; ", flops_source);
  return peaks;
}

namespace {

// One phase's run on one GPU: its points, aggregated against the probes.
absl::StatusOr<std::vector<v1::PointResult>> RunPoints(const WorkloadConfig& config, int device,
                                                       const Peaks& peaks) {
  DeviceLocalCommunicator comm;
  RankContext context;
  absl::StatusOr<RankResult> result = RunCudaRank(config, context, comm, device);
  if (!result.ok()) return result.status();
  return AggregateRanks(config, {RankOutputFromResult(*result, config, RankReportContext{})},
                        peaks);
}

// Median seconds of `op` (it enqueues on `stream`) over kAttentionTimed runs timed with CUDA
// events, after kAttentionWarmups.
constexpr int kAttentionWarmups = 3;
constexpr int kAttentionTimed = 20;
absl::StatusOr<double> MedianKernelSeconds(cudaStream_t stream,
                                           const std::function<absl::Status()>& op) {
  cudaEvent_t start = nullptr, stop = nullptr;
  MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(cudaEventCreate(&start), "cudaEventCreate"));
  if (absl::Status s = cuda::CudaCheck(cudaEventCreate(&stop), "cudaEventCreate"); !s.ok()) {
    cudaEventDestroy(start);
    return s;
  }
  const auto run = [&]() -> absl::StatusOr<double> {
    for (int i = 0; i < kAttentionWarmups; ++i) MOECAP_RETURN_IF_ERROR(op());
    std::vector<double> seconds;
    for (int i = 0; i < kAttentionTimed; ++i) {
      MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(cudaEventRecord(start, stream), "cudaEventRecord"));
      MOECAP_RETURN_IF_ERROR(op());
      MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(cudaEventRecord(stop, stream), "cudaEventRecord"));
      MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(cudaEventSynchronize(stop), "cudaEventSynchronize"));
      float ms = 0;
      MOECAP_RETURN_IF_ERROR(
          cuda::CudaCheck(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime"));
      seconds.push_back(static_cast<double>(ms) * 1e-3);
    }
    std::sort(seconds.begin(), seconds.end());
    return (seconds[kAttentionTimed / 2 - 1] + seconds[kAttentionTimed / 2]) / 2;
  };
  absl::StatusOr<double> result = run();
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return result;
}

// "Decode attention alone": the split-KV decode kernels on the KV shapes of the self-check's
// models, KV bytes read per second against the copy probe (target >= 0.80). GQA with
// Mixtral-8x7B's attention per GPU (32 heads on 8 KV heads of 128) at contexts 4096 and 16384;
// MLA with DeepSeek-V3's (128 heads, 512 + 64) at 4096; batches 8..64, bf16 and fp8 caches. The
// caches are zeros (Allocate zeroes them): the kernels' work does not depend on the values. Each
// point's text line goes to `lines`, its figures to `points`.
absl::Status RunDecodeAttentionPoints(cuda::CudaBackend& backend, double copy_bw,
                                      std::vector<std::string>& lines, nlohmann::json& points) {
  int sms = 0;
  MOECAP_RETURN_IF_ERROR(backend.MakeCurrent());
  MOECAP_RETURN_IF_ERROR(cuda::CudaCheck(
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, backend.device()),
      "cudaDeviceGetAttribute(multiProcessorCount)"));
  const std::vector<int64_t> batches = {8, 16, 32, 64};
  constexpr int64_t kHeads = 32, kKvHeads = 8, kHeadDim = 128;
  constexpr int64_t kMlaHeads = 128, kLora = 512, kRope = 64, kMlaContext = 4096;
  constexpr int64_t kMaxBatch = 64, kMaxContext = 16384;
  // One pair of caches, sized for the largest point (bf16), serves every point.
  const size_t cache_bytes =
      static_cast<size_t>(std::max(kMaxBatch * kMaxContext * kKvHeads * kHeadDim,
                                   kMaxBatch * kMlaContext * (kLora + kRope)) *
                          2);
  absl::StatusOr<Buffer> k = backend.Allocate(cache_bytes);
  if (!k.ok()) return k.status();
  absl::StatusOr<Buffer> v = backend.Allocate(cache_bytes);
  if (!v.ok()) return v.status();
  absl::StatusOr<Buffer> q = backend.Allocate(
      static_cast<size_t>(kMaxBatch * std::max(kHeads * kHeadDim, kMlaHeads * (kLora + kRope))) *
      sizeof(float));
  if (!q.ok()) return q.status();
  absl::StatusOr<Buffer> out = backend.Allocate(
      static_cast<size_t>(kMaxBatch * std::max(kHeads * kHeadDim, kMlaHeads * kLora)) *
      sizeof(float));
  if (!out.ok()) return out.status();
  absl::StatusOr<Buffer> lens = backend.Allocate(kMaxBatch * sizeof(int32_t));
  if (!lens.ok()) return lens.status();

  const auto point = [&](bool mla, Dtype dtype, int64_t context, int64_t batch) -> absl::Status {
    const std::vector<int32_t> host_lens(static_cast<size_t>(batch), static_cast<int32_t>(context));
    MOECAP_RETURN_IF_ERROR(
        backend.Upload(lens->data(), host_lens.data(), host_lens.size() * sizeof(int32_t)));
    absl::StatusOr<cuda::DecodeAttentionPlan> plan =
        mla ? cuda::PlanMlaDecode(batch, kMlaHeads, kLora, context, sms)
            : cuda::PlanGqaDecode(batch, kHeads, kKvHeads, kHeadDim, dtype, context, sms);
    if (!plan.ok()) return plan.status();
    absl::StatusOr<Buffer> workspace =
        backend.Allocate(static_cast<size_t>(std::max<int64_t>(plan->workspace_bytes, 1)));
    if (!workspace.ok()) return workspace.status();
    const size_t workspace_bytes = static_cast<size_t>(plan->workspace_bytes);
    std::function<absl::Status()> op;
    double kv_bytes = 0, flops = 0;
    if (mla) {
      cuda::MlaDecodeArgs a;
      a.q_latent = q->as<float>();
      a.seqs = batch;
      a.heads = kMlaHeads;
      a.kv_lora_rank = kLora;
      a.rope_dim = kRope;
      a.cache = k->data();
      a.cache_dtype = dtype;
      a.capacity = context;
      a.context_lens = lens->as<int32_t>();
      a.softmax_scale = 1.0f / 13.856406f;  // 1/sqrt(192)
      a.out = out->as<float>();
      op = [&backend, a, p = *plan, w = workspace->data(), workspace_bytes] {
        return cuda::MlaDecodeAttention(a, p, w, workspace_bytes, backend.stream());
      };
      kv_bytes = cuda::MlaDecodeKvBytes(batch, context, kLora, kRope, dtype);
      flops = 2.0 * static_cast<double>(batch * kMlaHeads * context * (kLora + kRope + kLora));
    } else {
      cuda::GqaDecodeArgs a;
      a.q = q->as<float>();
      a.seqs = batch;
      a.heads = kHeads;
      a.kv_heads = kKvHeads;
      a.head_dim = kHeadDim;
      a.k_cache = k->data();
      a.v_cache = v->data();
      a.kv_dtype = dtype;
      a.capacity = context;
      a.context_lens = lens->as<int32_t>();
      a.softmax_scale = 1.0f / 11.313708f;  // 1/sqrt(128)
      a.out = out->as<float>();
      op = [&backend, a, p = *plan, w = workspace->data(), workspace_bytes] {
        return cuda::GqaDecodeAttention(a, p, w, workspace_bytes, backend.stream());
      };
      kv_bytes = cuda::GqaDecodeKvBytes(batch, context, kKvHeads, kHeadDim, 0, dtype);
      flops = 2.0 * static_cast<double>(batch * kHeads * context * 2 * kHeadDim);
    }
    absl::StatusOr<double> seconds = MedianKernelSeconds(backend.stream(), op);
    if (!seconds.ok()) return seconds.status();
    const double bytes_s = kv_bytes / *seconds;
    const std::string kind = mla ? "mla" : "gqa";
    points.push_back({{"kind", kind},
                      {"kv_dtype", DtypeName(dtype)},
                      {"context", context},
                      {"batch", batch},
                      {"splits", plan->splits},
                      {"median_s", *seconds},
                      {"kv_bytes", kv_bytes},
                      {"kv_bytes_per_s", bytes_s},
                      {"flops_per_s", flops / *seconds},
                      {"bandwidth_ratio", bytes_s / copy_bw}});
    lines.push_back(absl::StrFormat(
        "decode attention %s %-4s ctx %5d batch %2d (%2d splits): %.3f ms; KV %.1f GB/s / copy "
        "%.1f GB/s = %.3f (target >= 0.80); %.1f TFLOP/s\n",
        kind, DtypeName(dtype), context, batch, plan->splits, *seconds * 1e3, bytes_s / 1e9,
        copy_bw / 1e9, bytes_s / copy_bw, flops / *seconds / 1e12));
    return absl::OkStatus();
  };
  for (const Dtype dtype : {Dtype::kBf16, Dtype::kFp8}) {
    for (const int64_t context : {int64_t{4096}, kMaxContext}) {
      for (const int64_t batch : batches)
        MOECAP_RETURN_IF_ERROR(point(false, dtype, context, batch));
    }
  }
  for (const Dtype dtype : {Dtype::kBf16, Dtype::kFp8}) {
    for (const int64_t batch : batches)
      MOECAP_RETURN_IF_ERROR(point(true, dtype, kMlaContext, batch));
  }
  return absl::OkStatus();
}

}  // namespace

int RunCudaSelfCheckPerf(const SelfCheckOptions& o) {
  const auto fail = [](const absl::Status& status) {
    std::cerr << "moecap-bench: error: " << status.message() << std::endl;
    return 1;
  };
  std::string why;
  if (CudaDeviceCount(&why) == 0) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("--self-check-perf --backend cuda: no usable CUDA device (", why, ")")));
  }
  double copy_bw = 0, gemm_flops = 0;
  std::string library;
  std::vector<std::string> attention_lines;
  nlohmann::json attention_points = nlohmann::json::array();
  {
    absl::StatusOr<std::unique_ptr<cuda::CudaBackend>> backend =
        cuda::CudaBackend::Create(o.device);
    if (!backend.ok()) return fail(backend.status());
    library = (*backend)->LibraryConfig();
    absl::StatusOr<double> copy = cuda::ProbeCopyBandwidth(**backend);
    if (!copy.ok()) return fail(copy.status());
    absl::StatusOr<double> gemm = cuda::ProbeGemmFlops(**backend, Dtype::kBf16);
    if (!gemm.ok()) return fail(gemm.status());
    copy_bw = *copy;
    gemm_flops = *gemm;
    if (absl::Status s =
            RunDecodeAttentionPoints(**backend, copy_bw, attention_lines, attention_points);
        !s.ok()) {
      return fail(s);
    }
  }  // the probe's backend (and its cuBLAS workspace) goes before the layer's weights arrive
  const Peaks peaks{copy_bw, gemm_flops, 1, "probes: device copy (read + write), cuBLAS bf16 GEMM"};

  WorkloadConfig base;
  base.model = o.model;
  base.scale = o.scale;
  base.layers = o.layers > 0 ? o.layers : 4;
  base.dtype = Dtype::kBf16;
  base.routing.mode = RoutingMode::kUniform;  // every expert's weights are read each step
  base.iterations = 20;
  base.warmup = 3;
  base.seed = 1;
  base.check = false;
  WorkloadConfig decode = base;
  decode.phases = {ServingPhase::kDecode};
  decode.batches = {1, 8, 32, 64};
  WorkloadConfig prefill = base;
  prefill.phases = {ServingPhase::kPrefill};
  prefill.batches = {16};
  prefill.prompt_len = 512;

  const ModelSpec m = ScaledModel(base.model, base.scale);
  const double weight_bytes = static_cast<double>(base.layers) * m.experts * 3 * m.hidden_size *
                              m.expert_ffn_size * DtypeBytes(Dtype::kBf16);
  if (!o.json) {
    std::cout
        << absl::StrFormat(
               "moecap-bench --self-check-perf --backend cuda on %s, device %d: %s\n"
               "probes: device copy %.1f GB/s (read + write); cuBLAS bf16 GEMM %.1f TFLOP/s\n"
               "layer stack: %s scale 1/%d (d=%d, f_e=%d, E=%d, k=%d), %d layers, bf16, routing "
               "uniform, %.2f GB of expert weights; %d iterations per point\n",
               GetHostInfo().hostname, o.device, library, copy_bw / 1e9, gemm_flops / 1e12, m.name,
               base.scale, m.hidden_size, m.expert_ffn_size, m.experts, m.experts_per_token,
               base.layers, weight_bytes / 1e9, base.iterations)
        << std::flush;
    for (const std::string& line : attention_lines) std::cout << line;
    std::cout << std::flush;
  }
  nlohmann::json report = {{"device", o.device},
                           {"library", library},
                           {"model", m.name},
                           {"scale", base.scale},
                           {"layers", base.layers},
                           {"dtype", "bf16"},
                           {"probes", {{"copy_bytes_s", copy_bw}, {"gemm_bf16_flops", gemm_flops}}},
                           {"decode_attention", attention_points},
                           {"points", nlohmann::json::array()}};
  for (const WorkloadConfig* config : {&decode, &prefill}) {
    absl::StatusOr<std::vector<v1::PointResult>> points = RunPoints(*config, o.device, peaks);
    if (!points.ok()) return fail(points.status());
    for (const v1::PointResult& point : *points) {
      const int64_t batch = config->batches[static_cast<size_t>(point.point_index())];
      for (const v1::PhaseResult& p : point.phases()) {
        const bool is_decode = p.phase() == v1::PHASE_DECODE;
        const v1::Percentiles& t = p.step_time();
        report["points"].push_back({{"phase", is_decode ? "decode" : "prefill"},
                                    {"batch", batch},
                                    {"tokens", p.tokens_per_step()},
                                    {"step_mean_s", t.mean()},
                                    {"step_p50_s", t.p50()},
                                    {"counted_bytes_per_s", p.achieved_bandwidth_bytes_per_s()},
                                    {"counted_flops_per_s", p.achieved_flops_per_s()},
                                    {"bandwidth_ratio", p.s_mbu()},
                                    {"flops_ratio", p.s_mfu()}});
        if (o.json) continue;
        if (is_decode) {
          std::cout << absl::StrFormat(
              "decode  batch %3d: step %.3f ms (p50 %.3f); counted %.1f GB/s / copy %.1f GB/s = "
              "%.3f (target >= 0.80); %.1f TFLOP/s / GEMM = %.3f\n",
              batch, t.mean() * 1e3, t.p50() * 1e3, p.achieved_bandwidth_bytes_per_s() / 1e9,
              copy_bw / 1e9, p.s_mbu(), p.achieved_flops_per_s() / 1e12, p.s_mfu());
        } else {
          std::cout << absl::StrFormat(
              "prefill batch %3d x %d tokens (%d): step %.3f ms (p50 %.3f); counted %.1f TFLOP/s / "
              "GEMM %.1f TFLOP/s = %.3f (target >= 0.70); %.1f GB/s / copy = %.3f\n",
              batch, config->prompt_len, p.tokens_per_step(), t.mean() * 1e3, t.p50() * 1e3,
              p.achieved_flops_per_s() / 1e12, gemm_flops / 1e12, p.s_mfu(),
              p.achieved_bandwidth_bytes_per_s() / 1e9, p.s_mbu());
        }
        std::cout << std::flush;
      }
    }
  }
  if (o.json) std::cout << report.dump(2) << "\n";
  return 0;
}

}  // namespace moecap
