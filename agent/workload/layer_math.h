// The arithmetic of one MoE layer, shared by the expert-parallel path (moe_layer.h) and the
// single-rank reference (reference.h) so that both compute each token the same way: RMS norm,
// router GEMM + scoring + top-k (or an override's choice), and a chunked SwiGLU expert.
#ifndef MOECAP_AGENT_WORKLOAD_LAYER_MATH_H_
#define MOECAP_AGENT_WORKLOAD_LAYER_MATH_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/compute/compute_backend.h"
#include "agent/workload/weights.h"
#include "common/dtype.h"
#include "common/model.h"

namespace moecap {

// out[t] = x[t] / sqrt(mean(x[t]²) + 1e-6), without a learned scale (norm weights are not counted).
void RmsNormRows(const float* x, int64_t rows, int64_t hidden, float* out);

// Routes `rows` tokens: logits = x·W_routerᵀ (x in `dtype`, rows × d; W_router E × d) into `logits`
// (rows × E, fp32); then per token the chosen experts (the top-k of the logits, or
// `override_choices` when not null) into `chosen` (rows × k) and their combine weights into
// `weights` (rows × k).
absl::Status RouteTokens(ComputeBackend& backend, Dtype dtype, const ModelSpec& model,
                         const void* x, int64_t rows, const void* router,
                         const int32_t* override_choices, float* logits, int32_t* chosen,
                         float* weights);

// Scratch for ExpertForward, sized for chunks of `chunk_rows` rows and widths up to `max_ffn`.
struct ExpertScratch {
  int64_t chunk_rows = 0;
  Buffer rows;     // chunk × d, dtype: gathered input rows
  Buffer gate_up;  // chunk × 2f, fp32
  Buffer act;      // chunk × f, dtype: SwiGLU output, the down projection's input
  Buffer out;      // chunk × d, fp32

  static absl::StatusOr<ExpertScratch> Make(ComputeBackend& backend, Dtype dtype, int64_t hidden,
                                            int64_t max_ffn);
  // Rows per chunk: enough for efficient GEMMs, few enough that gate_up stays near 32 MiB.
  static int64_t ChunkRows(int64_t max_ffn);
  // Bytes Make allocates (for the memory estimate).
  static int64_t Bytes(Dtype dtype, int64_t hidden, int64_t max_ffn);
};

// Supplies input rows [first, first + count) of an expert in `dtype`: returns a pointer to them,
// either where they already lie contiguously or after copying them into `scratch`.
using RowSource = std::function<const void*(int64_t first, int64_t count, void* scratch)>;
// Receives output rows [first, first + count) (fp32, count × d).
using RowSink = std::function<void(int64_t first, int64_t count, const float* rows)>;

// One SwiGLU expert (gate_up: 2f × d, the gate's f rows then the up projection's; down: d × f;
// both in `dtype`, stored as ComputeBackend::MatMul takes weights) over `rows` rows, chunk by
// chunk: y = (silu(x·W_gᵀ) ⊙ (x·W_uᵀ))·W_dᵀ.
absl::Status ExpertForward(ComputeBackend& backend, Dtype dtype, int64_t hidden, int64_t ffn,
                           const void* gate_up, const void* down, int64_t rows,
                           const RowSource& source, const RowSink& sink, ExpertScratch& scratch);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_LAYER_MATH_H_
