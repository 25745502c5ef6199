// moecap-bench --backend cuda: pre-flight checks, GPU peaks, and the GPU performance self-check.
#include "agent/bench/cuda_bench.h"

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/comm/nccl/nccl_communicator.h"
#include "agent/compute/cuda/cuda_backend.h"
#include "agent/compute/cuda/cuda_probes.h"
#include "agent/compute/gpu_discovery.h"
#include "agent/compute/host_probe.h"
#include "agent/workload/cuda/cuda_rank.h"
#include "agent/workload/cuda/device_local_communicator.h"
#include "agent/workload/harness.h"
#include "agent/workload/rank_report.h"

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
  }
  nlohmann::json report = {{"device", o.device},
                           {"library", library},
                           {"model", m.name},
                           {"scale", base.scale},
                           {"layers", base.layers},
                           {"dtype", "bf16"},
                           {"probes", {{"copy_bytes_s", copy_bw}, {"gemm_bf16_flops", gemm_flops}}},
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
