// C (m×n) = A (m×k)·Wᵀ (W: n×k, rows ldw apart) for a few activation rows, fp32: the products of a
// decode step (an expert's handful of tokens, a KV group's query heads over its cache). They are
// bound by reading W once from memory, which sgemm does not do for few rows (it first copies,
// packs, the weights) and this OpenBLAS's sgemv does not at full speed either. The kernel reads
// each weight row whole and in order (a few sequential streams the hardware prefetchers follow),
// every vector of it feeding every activation row, whose few rows stay in cache.
//
// One run of tools' A/B (Sapphire Rapids VM, one thread, the median of 9 alternating rounds, GB/s
// of W read; OpenBLAS 0.3.21 sgemv/sgemm, this kernel with AVX2, with AVX-512):
//   d=1024 f=3584 gate_up, 1 row: 9.6, 13.5, 14.1; 2 rows: 5.3, 10.9, 12.0; 4 rows: 4.7, 8.9,
//   11.0; 8 rows: 3.5, 7.0, 7.6. A 128-wide cache (K of 4096 keys), 4 rows: 4.7, 6.5, 6.3.
#ifndef MOECAP_AGENT_COMPUTE_SMALL_ROWS_MATMUL_H_
#define MOECAP_AGENT_COMPUTE_SMALL_ROWS_MATMUL_H_

#include <cstdint>

namespace moecap::small_rows {

// The most activation rows the kernel takes; more go to sgemm.
inline constexpr int64_t kMaxRows = 8;

// The instruction sets it is built for, and the best this CPU has (kNone: use BLAS).
enum class Isa { kNone, kAvx2, kAvx512 };
Isa BestIsa();

// C = A·Wᵀ, or C += A·Wᵀ with `accumulate`; 1 ≤ m ≤ kMaxRows. Precondition: the CPU has the ISA.
void MatMulAvx2(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* w,
                int64_t ldw, float* c, int64_t ldc, bool accumulate);
void MatMulAvx512(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* w,
                  int64_t ldw, float* c, int64_t ldc, bool accumulate);

}  // namespace moecap::small_rows

#endif  // MOECAP_AGENT_COMPUTE_SMALL_ROWS_MATMUL_H_
