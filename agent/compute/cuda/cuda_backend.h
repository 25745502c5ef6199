// ComputeBackend on one NVIDIA GPU: cuBLAS GEMMs (cublasGemmEx, fp32 accumulation) and the
// element-wise kernels of cuda_kernels.h, all enqueued on the backend's own stream. Pointers are
// device pointers. Calls return once the work is enqueued; Synchronize() waits for it.
//
// Thread-safety: one thread drives a backend at a time (a stream and a cuBLAS handle are not
// meant to be shared); every call makes the backend's device current on the calling thread.
#ifndef MOECAP_AGENT_COMPUTE_CUDA_CUDA_BACKEND_H_
#define MOECAP_AGENT_COMPUTE_CUDA_CUDA_BACKEND_H_

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/compute/compute_backend.h"
#include "common/dtype.h"

namespace moecap::cuda {

class CudaBackend : public ComputeBackend {
 public:
  // A backend on device `device` (0-based, as CUDA numbers them after CUDA_VISIBLE_DEVICES).
  // FailedPrecondition with CUDA's reason when there is no driver or no such device.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(int device);

  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;
  ~CudaBackend() override;

  std::string name() const override { return "cuda-cublas"; }
  // "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 79.1 GiB; CUDA runtime 13.0, driver 13.0; cuBLAS ...".
  std::string LibraryConfig() const override { return library_config_; }
  // fp32 and bf16; fp16 and fp8 are Unimplemented (named in the message).
  absl::Status CheckDtype(Dtype dtype) const override;
  // cudaMalloc, zeroed before it returns (the zeroing is waited for, so work on any stream sees
  // zeros). Sizes round up to 256 bytes; a release frees it on this device.
  absl::StatusOr<Buffer> Allocate(size_t bytes) override;
  // Row-major C (fp32) = A·Wᵀ via cublasGemmEx, fp32 accumulation (CUBLAS_COMPUTE_32F: no TF32).
  absl::Status MatMul(Dtype dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda,
                      const void* w, int64_t ldw, float* c, int64_t ldc, bool accumulate) override;
  // MatMul with C stored in `out_dtype`: kFp32 is MatMul; kBf16 needs bf16 operands (cuBLAS
  // rounds the fp32 accumulator to bf16 once, on store; `accumulate` adds the old C in fp32).
  absl::Status MatMulTo(Dtype dtype, Dtype out_dtype, int64_t m, int64_t n, int64_t k,
                        const void* a, int64_t lda, const void* w, int64_t ldw, void* c,
                        int64_t ldc, bool accumulate);
  // The kernels of cuda_kernels.h on this stream. ComputeBackend gives them no Status: a launch
  // error is kept and returned by the next Synchronize().
  void SwiGlu(int64_t rows, int64_t f, const float* gate_up, Dtype out_dtype, void* out) override;
  void FromFloat(const float* in, int64_t count, Dtype dtype, void* out) override;
  void ToFloat(const void* in, int64_t count, Dtype dtype, float* out) override;
  void SetThreads(int /*threads*/) override {}  // a GPU takes no thread count
  int threads() const override { return 1; }

  // Waits for the stream; returns the first error kept from a void call (then forgets it), or
  // the stream's own error.
  absl::Status Synchronize();
  // Host <-> device copies on the stream, waited for (tests, setup; not for timed paths).
  absl::Status Upload(void* device_dst, const void* host_src, size_t bytes);
  absl::Status Download(void* host_dst, const void* device_src, size_t bytes);
  // Makes this backend's device current on the calling thread.
  absl::Status MakeCurrent() const;

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }
  // Bound to stream(), with its own workspace (so cuBLAS allocates nothing during graph capture).
  cublasHandle_t cublas() const { return cublas_; }

 private:
  CudaBackend(int device, cudaStream_t stream, cublasHandle_t cublas, void* workspace,
              std::string library_config);
  void Keep(absl::Status status);

  int device_;
  cudaStream_t stream_;
  cublasHandle_t cublas_;
  void* workspace_;
  std::string library_config_;
  absl::Status kept_error_;
};

// CUBLAS_STATUS_SUCCESS is OK; anything else an error naming `what` and cuBLAS's status.
absl::Status CublasCheck(cublasStatus_t status, absl::string_view what);

}  // namespace moecap::cuda

#endif  // MOECAP_AGENT_COMPUTE_CUDA_CUDA_BACKEND_H_
