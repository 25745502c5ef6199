// Quick measurements of a GPU's attainable peaks, the denominators a run can be compared with
// when the hardware catalog has no entry (or to see how far a device is from its datasheet):
// device-to-device copy bandwidth and cuBLAS GEMM throughput.
#ifndef MOECAP_AGENT_COMPUTE_CUDA_CUDA_PROBES_H_
#define MOECAP_AGENT_COMPUTE_CUDA_CUDA_PROBES_H_

#include "absl/status/statusor.h"
#include "agent/compute/cuda/cuda_backend.h"
#include "common/dtype.h"

namespace moecap::cuda {

// Device memory bandwidth in bytes per second, counting bytes READ PLUS WRITTEN (2·size/t) as a
// STREAM-style copy figure does and as S-MBU counts traffic: cudaMemcpyAsync device to device of
// min(1 GiB, a quarter of free memory), 3 warm-ups, then the median of 10 copies timed with CUDA
// events. FailedPrecondition when under 64 MiB is free (16 MiB per buffer).
absl::StatusOr<double> ProbeCopyBandwidth(CudaBackend& backend);

// Dense GEMM throughput in FLOP/s (2·n³/t) of square n = 8192 products (4096 when free memory is
// short) through CudaBackend::MatMul in `dtype` (fp32 accumulation and output), operands filled
// with uniform random values (zeros would flatter the power draw): 3 warm-ups, median of 10.
absl::StatusOr<double> ProbeGemmFlops(CudaBackend& backend, Dtype dtype);

}  // namespace moecap::cuda

#endif  // MOECAP_AGENT_COMPUTE_CUDA_CUDA_PROBES_H_
