// What the MoE workload computes with, behind one interface: OpenBLAS on the host (CpuBackend)
// and cuBLAS on a GPU (compute/cuda's CudaBackend). Matrices are row-major, weights stored output
// by output (n×k, as nn.Linear does); results accumulate in fp32 whatever the operands' dtype, as
// BLAS libraries' mixed-precision GEMMs do.
#ifndef MOECAP_AGENT_COMPUTE_COMPUTE_BACKEND_H_
#define MOECAP_AGENT_COMPUTE_COMPUTE_BACKEND_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace moecap {

// A block of the backend's memory, freed when the Buffer goes. Move-only.
class Buffer {
 public:
  Buffer() = default;
  Buffer(void* data, size_t bytes, std::function<void(void*)> release)
      : data_(data), bytes_(bytes), release_(std::move(release)) {}
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept {
    if (this != &other) {
      Reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
      release_ = std::move(other.release_);
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { Reset(); }

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }

 private:
  void Reset() {
    if (data_ != nullptr && release_) release_(data_);
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data_ = nullptr;
  size_t bytes_ = 0;
  std::function<void(void*)> release_;
};

class ComputeBackend {
 public:
  virtual ~ComputeBackend() = default;

  // "cpu-openblas", "cuda-cublas": for reports.
  virtual std::string name() const = 0;
  // The library's own description (openblas_get_config(), cuBLAS version): for reproducibility.
  virtual std::string LibraryConfig() const = 0;

  // OK when the backend can run GEMMs in `dtype`; otherwise Unimplemented saying why.
  virtual absl::Status CheckDtype(Dtype dtype) const = 0;

  // Zero-filled memory of at least `bytes` bytes, aligned for vector loads, already backed by
  // pages (so first-touch faults do not land inside timed steps).
  virtual absl::StatusOr<Buffer> Allocate(size_t bytes) = 0;

  // C (fp32, m×n, leading dimension ldc) = A·Wᵀ, or C += A·Wᵀ when `accumulate`. A (m×k, lda)
  // holds activations; W (n×k, ldw) holds weights as nn.Linear stores them, one row of k inputs
  // per output, so a one-token product streams W once. Both in `dtype`. m or n may be 0 (nothing
  // happens); k may be 0 (C is zeroed unless accumulating).
  virtual absl::Status MatMul(Dtype dtype, int64_t m, int64_t n, int64_t k, const void* a,
                              int64_t lda, const void* w, int64_t ldw, float* c, int64_t ldc,
                              bool accumulate) = 0;

  // SwiGLU activation: out[i][j] = silu(gate_up[i][j]) · gate_up[i][f + j] for i < rows, j < f,
  // where gate_up rows are 2f wide (the gate and up projections side by side) and out rows are f
  // wide, stored in `out_dtype` (the next GEMM's input type).
  virtual void SwiGlu(int64_t rows, int64_t f, const float* gate_up, Dtype out_dtype,
                      void* out) = 0;

  // Element conversions between fp32 and a GEMM dtype (fp32: a copy; bf16: round to nearest
  // even). `in` and `out` must not overlap unless they are the same fp32 buffer.
  virtual void FromFloat(const float* in, int64_t count, Dtype dtype, void* out) = 0;
  virtual void ToFloat(const void* in, int64_t count, Dtype dtype, float* out) = 0;

  // Threads one GEMM may use (BLAS threads on a CPU; ignored by a GPU).
  virtual void SetThreads(int threads) = 0;
  virtual int threads() const = 0;
};

// Makes `buffer` hold at least `bytes` bytes from `backend`, keeping it when it already does. The
// old buffer is freed first: the old and the new need not both fit (device memory is tight).
inline absl::Status GrowBuffer(ComputeBackend& backend, Buffer& buffer, size_t bytes) {
  if (buffer.data() != nullptr && buffer.bytes() >= bytes) return absl::OkStatus();
  buffer = Buffer();
  absl::StatusOr<Buffer> fresh = backend.Allocate(std::max<size_t>(bytes, 1));
  if (!fresh.ok()) return fresh.status();
  buffer = *std::move(fresh);
  return absl::OkStatus();
}

}  // namespace moecap

#endif  // MOECAP_AGENT_COMPUTE_COMPUTE_BACKEND_H_
