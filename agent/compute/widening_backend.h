// A host backend that runs bf16 GEMMs by widening the bf16 operands to fp32 (exact) and calling
// the fp32 GEMM, which accumulates in fp32 as bf16 GEMM libraries do. Everything else (bf16
// storage and rounding, SwiGLU, conversions) is CpuBackend's. It serves as the host bf16
// reference where OpenBLAS has no cblas_sbgemm (Debian's) and as the GPU check's host side.
#ifndef MOECAP_AGENT_COMPUTE_WIDENING_BACKEND_H_
#define MOECAP_AGENT_COMPUTE_WIDENING_BACKEND_H_

#include <string>

#include "agent/compute/cpu_backend.h"

namespace moecap {

class WideningBackend : public CpuBackend {
 public:
  using CpuBackend::CpuBackend;

  std::string name() const override { return "cpu-openblas-bf16-widened"; }
  absl::Status CheckDtype(Dtype dtype) const override;
  absl::Status MatMul(Dtype dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda,
                      const void* w, int64_t ldw, float* c, int64_t ldc, bool accumulate) override;
};

}  // namespace moecap

#endif  // MOECAP_AGENT_COMPUTE_WIDENING_BACKEND_H_
