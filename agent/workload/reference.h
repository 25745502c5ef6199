// The single-rank reference of the MoE stack: the same layers computed for this rank's tokens in
// one process with every expert at hand (experts hosted elsewhere are regenerated from the seed),
// no communication. The check compares the expert-parallel output with it.
#ifndef MOECAP_AGENT_WORKLOAD_REFERENCE_H_
#define MOECAP_AGENT_WORKLOAD_REFERENCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/compute/compute_backend.h"
#include "agent/workload/config.h"
#include "agent/workload/dense_ffn.h"
#include "agent/workload/moe_layer.h"
#include "agent/workload/weights.h"
#include "common/model.h"

namespace moecap {

struct CheckResult {
  bool ran = false;
  bool passed = false;
  double max_abs_error = 0;  // max_i |out_i − ref_i|
  double max_rel_error = 0;  // max_abs_error / max_i |ref_i| (norm-wise, robust to ref_i ≈ 0)
  double tolerance = 0;      // bound on max_rel_error
  // Tokens whose reference top-k differed from the expert-parallel one only by a near-tie (the
  // logits at the boundary within tolerance, as rounding differences in earlier layers can
  // cause): the reference follows the expert-parallel choice there.
  int64_t near_ties = 0;
  // Tokens whose expert-parallel choice was not a top-k of the reference's logits: a failure.
  int64_t routing_mismatches = 0;
};

// Recomputes the stack for `own_tokens` rows of `input` (fp32, own_tokens × d) and compares with
// `ep_output`. `overrides` and `ep_routing` are what ExpertParallelMoe used and recorded.
// `attention` (decoder layers; null: the MoE blocks alone): the rows are these sequences, and each
// layer's attention runs first (ReferenceAttention, in double precision). `dense` and `dense_at`
// (a stack with dense layers, where they sit): those layers run `dense`, the engine's own dense
// FFNs (data-parallel, nothing of them is exchanged; their arithmetic has its own test).
absl::StatusOr<CheckResult> CheckAgainstReference(
    ComputeBackend& backend, const ModelSpec& scaled, const MoeWeights& weights, uint64_t seed,
    const float* input, int64_t own_tokens, const std::vector<std::vector<int32_t>>& overrides,
    const RoutingRecord& ep_routing, const float* ep_output, double tolerance,
    const SequenceBlock* attention = nullptr, DenseFfnLayers* dense = nullptr,
    const std::vector<bool>* dense_at = nullptr);

// The bytes CheckAgainstReference allocates (for the memory estimate).
int64_t ReferenceWorkBytes(const ModelSpec& scaled, Dtype dtype, int64_t own_tokens);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_REFERENCE_H_
