// The CUDA kernels of the MoE layer, as host functions that enqueue work on a stream and return
// at once (launch errors come back as a Status; execution errors surface at the next sync). They
// mirror the host arithmetic of agent/workload (layer_math, router, weights) element for element
// so that the GPU path and the CPU reference compute the same thing: RMS norm without a learned
// scale, router scoring (softmax or sigmoid) with top-k where ties go to the lower index,
// counter-based weight generation (random.h), SwiGLU, weighted combine. Matrices are row-major.
// `dtype` is the GEMM operand type: kFp32 or kBf16 (fp8 is not supported here).
#ifndef MOECAP_AGENT_COMPUTE_CUDA_CUDA_KERNELS_H_
#define MOECAP_AGENT_COMPUTE_CUDA_CUDA_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"
#include "common/dtype.h"
#include "common/model.h"

namespace moecap::cuda {

// out[i] (i < count, in `dtype`) = (2·Uniform01(key, i) − 1) · bound, rounded to `dtype` (bf16:
// nearest even): bit-identical to FillWeights in agent/workload/weights.cc for the same key.
absl::Status FillUniform(uint64_t key, int64_t count, float bound, Dtype dtype, void* out,
                         cudaStream_t stream);

// Per row: normed = x / sqrt(mean(x²) + 1e-6) (sum in double as RmsNormRows does, or in float
// with a tolerance the tests state). Writes fp32 `normed` (may be null) and `act` in `dtype`
// (may be null; for kFp32 it may equal `normed`).
absl::Status RmsNorm(const float* x, int64_t rows, int64_t hidden, float* normed, Dtype dtype,
                     void* act, cudaStream_t stream);

// Per token t < rows: chosen[t·k..] = the top-k of logits[t·E..] (largest first, ties to the
// lower index), or override_choices[t·k..] when override_choices is not null; weights[t·k + j] =
// the chosen experts' scores (softmax over all E, or sigmoid), divided by their sum when
// `normalize` and the sum is positive (ChosenWeights). k ≤ 32, E ≤ 1024.
absl::Status RouteTopK(const float* logits, int64_t rows, int64_t experts, int64_t k,
                       RouterScoring scoring, bool normalize, const int32_t* override_choices,
                       int32_t* chosen, float* weights, cudaStream_t stream);

// Groups the pairs (token t, slot j) by expert: counts[e] (int64, E entries) = pairs choosing e;
// slot[i] (int64, rows·k entries) = the pair's row in the expert-sorted order, i.e. the number of
// pairs with a lower expert id plus the pairs before i with the same expert (the same stable
// order as the host code). `scratch` holds at least CountAndSlotScratchBytes(experts) bytes.
size_t CountAndSlotScratchBytes(int64_t experts);
absl::Status CountAndSlot(const int32_t* chosen, int64_t pairs, int64_t experts, int64_t* counts,
                          int64_t* slot, void* scratch, cudaStream_t stream);

// dst row slot[i] = src row i / k, for i < pairs (rows of `row_bytes` bytes, a multiple of 2):
// the dispatch's permutation of token rows into expert order.
absl::Status ScatterRows(const void* src, int64_t pairs, int64_t k, const int64_t* slot,
                         int64_t row_bytes, void* dst, cudaStream_t stream);

// dst row r = src row index[r], for r < rows: a gather by a row index (reordering received rows
// into expert-major order and back).
absl::Status GatherRows(const void* src, const int64_t* index, int64_t rows, int64_t row_bytes,
                        void* dst, cudaStream_t stream);

// out[i][j] = silu(gate_up[i][j]) · gate_up[i][f + j] for i < rows, j < f; gate_up fp32 with
// rows 2f wide, out in `out_dtype` with rows f wide (CpuBackend::SwiGlu).
absl::Status SwiGlu(const float* gate_up, int64_t rows, int64_t f, Dtype out_dtype, void* out,
                    cudaStream_t stream);

// fp32 -> dtype and dtype -> fp32 element conversion (bf16 nearest even).
absl::Status FromFloat(const float* in, int64_t count, Dtype dtype, void* out, cudaStream_t stream);
absl::Status ToFloat(const void* in, int64_t count, Dtype dtype, float* out, cudaStream_t stream);

// Per token t < rows: out[t] = residual[t] + (shared ? shared[t] : 0) + Σ_j weights[t·k + j] ·
// combined[slot[t·k + j]], with `combined` rows in `dtype` (d wide) and the rest fp32.
absl::Status Combine(const float* residual, const float* shared, const void* combined, Dtype dtype,
                     const int64_t* slot, const float* weights, int64_t rows, int64_t k,
                     int64_t hidden, float* out, cudaStream_t stream);

}  // namespace moecap::cuda

#endif  // MOECAP_AGENT_COMPUTE_CUDA_CUDA_KERNELS_H_
