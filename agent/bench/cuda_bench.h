// moecap-bench's GPU side (`--backend cuda`), compiled only when the CUDA backend is built: the
// checks made before any rank starts, the S-MBU/S-MFU denominators of a GPU run, and the GPU
// performance self-check.
#ifndef MOECAP_AGENT_BENCH_CUDA_BENCH_H_
#define MOECAP_AGENT_BENCH_CUDA_BENCH_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/bench/self_check_perf.h"
#include "agent/workload/config.h"
#include "agent/workload/report.h"
#include "common/catalog.h"

namespace moecap {

// FailedPrecondition when the host has no CUDA device or fewer than `ranks` (NCCL runs one rank
// per GPU); Unimplemented for a dtype the GPU engine does not run (fp32 and bf16 only).
absl::Status CheckCudaRun(const WorkloadConfig& config, int ranks);

// What the caller gives: a hardware catalog entry and/or peaks per device (0: not given).
struct GpuPeakRequest {
  std::string hardware;
  double peak_bandwidth_gb_s = 0;
  double peak_tflops = 0;
  Dtype dtype = Dtype::kBf16;
  int ranks = 1;
};

// Per figure: given, else the catalog entry (--hardware, or the one GPU 0's NVML name matches),
// else measured on GPU 0 (device copy bandwidth, cuBLAS GEMM in the run's dtype). One device per
// rank.
absl::StatusOr<Peaks> GpuPeaks(const Catalog& catalog, const GpuPeakRequest& request);

// `--self-check-perf --backend cuda`: on one GPU (options.device), the probes; decode attention
// alone (the split-KV kernels: GQA with Mixtral-8x7B's attention shape, bf16 and fp8 KV, contexts
// 4096 and 16384, and MLA with DeepSeek-V3's at 4096, batches 8..64: KV bytes/s ÷ copy bandwidth,
// target ≥ 0.80); then a Mixtral-8x7B-sized layer stack (options.model at options.scale, bf16,
// uniform routing) in decode at batch 1, 8, 32, 64 and in prefill at one batch: counted bytes/s ÷
// copy bandwidth (target ≥ 0.80) and counted FLOP/s ÷ bf16 GEMM peak (target ≥ 0.70), a line per
// point (or JSON with options.json). Returns the exit status.
int RunCudaSelfCheckPerf(const SelfCheckOptions& options);

}  // namespace moecap

#endif  // MOECAP_AGENT_BENCH_CUDA_BENCH_H_
