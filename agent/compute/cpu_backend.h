// ComputeBackend on the host with OpenBLAS: cblas_sgemm for fp32 (cblas_sgemv for one row and a
// weight-streaming kernel of its own for a few: decode), cblas_sbgemm for bf16 where the
// OpenBLAS build exports it (Debian's 0.3.21 build does not: bf16 is then refused, clearly).
#ifndef MOECAP_AGENT_COMPUTE_CPU_BACKEND_H_
#define MOECAP_AGENT_COMPUTE_CPU_BACKEND_H_

#include <memory>
#include <string>

#include "agent/compute/compute_backend.h"

namespace moecap {

class CpuBackend : public ComputeBackend {
 public:
  // `threads` <= 0 keeps OpenBLAS's own default.
  explicit CpuBackend(int threads);

  std::string name() const override { return "cpu-openblas"; }
  std::string LibraryConfig() const override;
  absl::Status CheckDtype(Dtype dtype) const override;
  absl::StatusOr<Buffer> Allocate(size_t bytes) override;
  absl::Status MatMul(Dtype dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda,
                      const void* w, int64_t ldw, float* c, int64_t ldc, bool accumulate) override;

  // fp32 products of up to small_rows::kMaxRows (8) rows use moecap's own kernel where the CPU
  // has AVX-512 or AVX2 + FMA (small_rows_matmul.h: it reads each weight once, straight from
  // memory, where sgemm first copies them); without either, one row uses sgemv, more sgemm.
  void SwiGlu(int64_t rows, int64_t f, const float* gate_up, Dtype out_dtype, void* out) override;
  void FromFloat(const float* in, int64_t count, Dtype dtype, void* out) override;
  void ToFloat(const void* in, int64_t count, Dtype dtype, float* out) override;
  void SetThreads(int threads) override;
  int threads() const override { return threads_; }

  // Whether this OpenBLAS exports cblas_sbgemm (looked up at run time: the header declares it
  // even in builds that leave it out).
  static bool HasBf16Gemm();

 private:
  int threads_ = 1;
};

// bf16 <-> fp32 for one element (round to nearest even; NaN stays NaN).
uint16_t FloatToBf16(float value);
float Bf16ToFloat(uint16_t value);

}  // namespace moecap

#endif  // MOECAP_AGENT_COMPUTE_CPU_BACKEND_H_
