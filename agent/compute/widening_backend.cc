// WideningBackend: bf16 GEMMs as fp32 GEMMs over the widened operands.
#include "agent/compute/widening_backend.h"

#include <vector>

namespace moecap {

absl::Status WideningBackend::CheckDtype(Dtype dtype) const {
  return dtype == Dtype::kBf16 ? absl::OkStatus() : CpuBackend::CheckDtype(dtype);
}

absl::Status WideningBackend::MatMul(Dtype dtype, int64_t m, int64_t n, int64_t k, const void* a,
                                     int64_t lda, const void* w, int64_t ldw, float* c, int64_t ldc,
                                     bool accumulate) {
  if (dtype != Dtype::kBf16) {
    return CpuBackend::MatMul(dtype, m, n, k, a, lda, w, ldw, c, ldc, accumulate);
  }
  // Every bf16 value is exactly an fp32 value, so the widened product is the bf16 product with
  // fp32 accumulation.
  std::vector<float> af(static_cast<size_t>(m * k));
  std::vector<float> wf(static_cast<size_t>(n * k));
  for (int64_t i = 0; i < m; ++i) {
    ToFloat(static_cast<const uint16_t*>(a) + i * lda, k, Dtype::kBf16, af.data() + i * k);
  }
  for (int64_t i = 0; i < n; ++i) {
    ToFloat(static_cast<const uint16_t*>(w) + i * ldw, k, Dtype::kBf16, wf.data() + i * k);
  }
  return CpuBackend::MatMul(Dtype::kFp32, m, n, k, af.data(), k, wf.data(), k, c, ldc, accumulate);
}

}  // namespace moecap
