// Copy-bandwidth and GEMM probes timed with CUDA events on the backend's stream.
#include "agent/compute/cuda/cuda_probes.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/compute/cuda/cuda_device.h"
#include "agent/compute/cuda/cuda_kernels.h"
#include "common/status_macros.h"

namespace moecap::cuda {
namespace {

constexpr int kWarmups = 3;
constexpr int kTimed = 10;

// Runs `op` kWarmups times, then kTimed times each between two events; returns the median time in
// seconds. `op` enqueues work on `stream` and returns its launch status.
absl::StatusOr<double> MedianSeconds(cudaStream_t stream, const std::function<absl::Status()>& op,
                                     absl::string_view what) {
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  MOECAP_RETURN_IF_ERROR(CudaCheck(cudaEventCreate(&start), "cudaEventCreate"));
  if (absl::Status s = CudaCheck(cudaEventCreate(&stop), "cudaEventCreate"); !s.ok()) {
    cudaEventDestroy(start);
    return s;
  }
  const auto run = [&]() -> absl::StatusOr<double> {
    for (int i = 0; i < kWarmups; ++i) {
      MOECAP_RETURN_IF_ERROR(op());
    }
    std::vector<double> seconds;
    for (int i = 0; i < kTimed; ++i) {
      MOECAP_RETURN_IF_ERROR(CudaCheck(cudaEventRecord(start, stream), "cudaEventRecord"));
      MOECAP_RETURN_IF_ERROR(op());
      MOECAP_RETURN_IF_ERROR(CudaCheck(cudaEventRecord(stop, stream), "cudaEventRecord"));
      if (absl::Status s =
              CudaCheck(cudaEventSynchronize(stop), absl::StrCat(what, ": cudaEventSynchronize"));
          !s.ok()) {
        return s;
      }
      float ms = 0;
      if (absl::Status s =
              CudaCheck(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
          !s.ok()) {
        return s;
      }
      seconds.push_back(static_cast<double>(ms) * 1e-3);
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = (seconds[kTimed / 2 - 1] + seconds[kTimed / 2]) / 2;
    if (!(median > 0)) {
      return absl::InternalError(absl::StrCat(what, ": timed ", median, " s, not positive"));
    }
    return median;
  };
  absl::StatusOr<double> result = run();
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return result;
}

absl::StatusOr<size_t> FreeBytes(CudaBackend& backend) {
  MOECAP_RETURN_IF_ERROR(backend.MakeCurrent());
  size_t free = 0;
  size_t total = 0;
  MOECAP_RETURN_IF_ERROR(CudaCheck(cudaMemGetInfo(&free, &total), "cudaMemGetInfo"));
  return free;
}

}  // namespace

absl::StatusOr<double> ProbeCopyBandwidth(CudaBackend& backend) {
  absl::StatusOr<size_t> free = FreeBytes(backend);
  if (!free.ok()) return free.status();
  constexpr size_t kMiB = 1u << 20;
  const size_t size = std::min<size_t>(size_t{1} << 30, *free / 4) / kMiB * kMiB;
  if (size < 16 * kMiB) {
    return absl::FailedPreconditionError(absl::StrCat("copy-bandwidth probe: only ", *free / kMiB,
                                                      " MiB of device memory free (needs 64)"));
  }
  absl::StatusOr<Buffer> src = backend.Allocate(size);
  if (!src.ok()) return src.status();
  absl::StatusOr<Buffer> dst = backend.Allocate(size);
  if (!dst.ok()) return dst.status();
  const cudaStream_t stream = backend.stream();
  absl::StatusOr<double> seconds = MedianSeconds(
      stream,
      [&]() {
        return CudaCheck(
            cudaMemcpyAsync(dst->data(), src->data(), size, cudaMemcpyDeviceToDevice, stream),
            "copy-bandwidth probe: cudaMemcpyAsync");
      },
      "copy-bandwidth probe");
  if (!seconds.ok()) return seconds.status();
  return 2.0 * static_cast<double>(size) / *seconds;  // read + written
}

absl::StatusOr<double> ProbeGemmFlops(CudaBackend& backend, Dtype dtype) {
  MOECAP_RETURN_IF_ERROR(backend.CheckDtype(dtype));
  absl::StatusOr<size_t> free = FreeBytes(backend);
  if (!free.ok()) return free.status();
  const size_t element = dtype == Dtype::kFp32 ? 4 : 2;
  // A and W in `dtype`, C in fp32; use at most half of the free memory.
  const auto bytes_for = [&](int64_t side) {
    return static_cast<size_t>(side * side) * (2 * element + sizeof(float));
  };
  int64_t n = 8192;
  if (bytes_for(n) > *free / 2) n = 4096;
  if (bytes_for(n) > *free / 2) {
    return absl::FailedPreconditionError(absl::StrCat("GEMM probe: ", *free >> 20,
                                                      " MiB of device memory free, needs ",
                                                      2 * bytes_for(n) >> 20, " MiB for n = ", n));
  }
  absl::StatusOr<Buffer> a = backend.Allocate(static_cast<size_t>(n * n) * element);
  if (!a.ok()) return a.status();
  absl::StatusOr<Buffer> w = backend.Allocate(static_cast<size_t>(n * n) * element);
  if (!w.ok()) return w.status();
  absl::StatusOr<Buffer> c = backend.Allocate(static_cast<size_t>(n * n) * sizeof(float));
  if (!c.ok()) return c.status();
  // Values in [-1, 1) keep every product and sum far from overflow.
  MOECAP_RETURN_IF_ERROR(FillUniform(1, n * n, 1.0f, dtype, a->data(), backend.stream()));
  MOECAP_RETURN_IF_ERROR(FillUniform(2, n * n, 1.0f, dtype, w->data(), backend.stream()));
  absl::StatusOr<double> seconds = MedianSeconds(
      backend.stream(),
      [&]() {
        return backend.MatMul(dtype, n, n, n, a->data(), n, w->data(), n, c->as<float>(), n, false);
      },
      absl::StrCat("GEMM probe (", DtypeName(dtype), ", n = ", n, ")"));
  if (!seconds.ok()) return seconds.status();
  return 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / *seconds;
}

}  // namespace moecap::cuda
