// One rank's side of an expert-parallel MoE layer stack. Per layer: gate (RMS norm, router GEMM,
// top-k or override), dispatch (all-to-all of per-expert counts, then all-to-all-v of the token
// rows, sorted by expert, to the ranks hosting them), experts (grouped SwiGLU GEMMs over the
// received rows; the shared experts over the rank's own tokens), combine (all-to-all-v back, then
// each token's weighted sum plus the residual).
#ifndef MOECAP_AGENT_WORKLOAD_MOE_LAYER_H_
#define MOECAP_AGENT_WORKLOAD_MOE_LAYER_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "agent/comm/communicator.h"
#include "agent/compute/compute_backend.h"
#include "agent/workload/layer_math.h"
#include "agent/workload/weights.h"
#include "common/model.h"

namespace moecap {

// Seconds per phase, summed over the layers of a step.
struct PhaseTimes {
  double gate = 0;
  double dispatch = 0;
  double experts = 0;
  double combine = 0;
};

// What one rank did in one step, summed over layers. Routing is fixed within a point, so every
// step of a point has the same tally.
struct StepTally {
  int64_t own_tokens = 0;
  int64_t pairs_computed = 0;       // token-expert pairs its experts processed
  int64_t local_activated_sum = 0;  // Σ_l its experts that received at least one pair
  int64_t dispatch_rows_sent = 0;   // rows it sent in dispatch, to itself included
  int64_t dispatch_rows_to_self = 0;
  int64_t combine_rows_sent = 0;  // rows it sent back in combine (= rows it received)
  int64_t combine_rows_to_self = 0;
  int64_t count_exchange_bytes = 0;  // bytes it sent in the count all-to-alls
  // [layer][expert]: pairs of this rank's own tokens per expert; summed over ranks, the global
  // routing histogram.
  std::vector<std::vector<int64_t>> histogram;
};

// The experts each of this rank's tokens went to, per layer ([layer][token·k + j]), for the check.
struct RoutingRecord {
  std::vector<std::vector<int32_t>> chosen;
};

class ExpertParallelMoe {
 public:
  // `scaled` is the model shape that runs; `weights` the rank's weights of it. All must outlive
  // this object.
  ExpertParallelMoe(const ModelSpec& scaled, const MoeWeights& weights, ComputeBackend& backend,
                    Communicator& comm);

  // Readies the buffers for steps of `own_tokens` tokens on this rank out of `global_tokens`
  // (each rank receives at most global_tokens·min(k, local experts) rows). `overrides`: per
  // layer, the override's choices for the rank's tokens (own_tokens·k ids), or empty for the
  // gate's own routing.
  absl::Status Prepare(int64_t own_tokens, int64_t global_tokens,
                       std::vector<std::vector<int32_t>> overrides);

  // Runs every layer once: `input` (own_tokens × d, fp32) in, `output` (same shape) out.
  // `times` accumulates each phase; `tally` and `record` (may be null) receive the step's counts
  // and routing.
  absl::Status Step(const float* input, float* output, PhaseTimes* times, StepTally* tally,
                    RoutingRecord* record);

  // The bytes Prepare allocates (for the memory estimate).
  static int64_t WorkBytes(const ModelSpec& scaled, Dtype dtype, int64_t own_tokens,
                           int64_t global_tokens, int world_size);

 private:
  absl::Status Layer(int64_t layer, const float* x, float* out, PhaseTimes* times, StepTally* tally,
                     RoutingRecord* record);
  absl::Status Grow(Buffer& buffer, size_t bytes);

  const ModelSpec& model_;
  const MoeWeights& weights_;
  ComputeBackend& backend_;
  Communicator& comm_;
  LayerShape shape_;
  Dtype dtype_;
  int world_;
  int64_t local_experts_;
  size_t row_bytes_;  // one token row in the wire/compute dtype

  int64_t own_tokens_ = 0;
  std::vector<std::vector<int32_t>> overrides_;

  Buffer hidden_[2];   // own × d fp32: layer outputs, ping-pong
  Buffer normed_;      // own × d fp32
  Buffer act_;         // own × d dtype (bf16 only; fp32 uses normed_)
  Buffer logits_;      // own × E fp32
  Buffer shared_out_;  // own × d fp32
  Buffer send_;        // own·k rows, dtype: dispatch out, sorted by expert
  Buffer combined_;    // own·k rows, dtype: combine in, same layout as send_
  Buffer received_;    // dispatch in, by source rank then local expert
  Buffer results_;     // combine out, same layout as received_
  ExpertScratch scratch_;
  std::vector<int32_t> chosen_;       // own × k
  std::vector<float> weights_k_;      // own × k
  std::vector<int64_t> slot_;         // own × k: row of each pair in send_/combined_
  std::vector<int64_t> send_counts_;  // E: pairs per expert (= per destination, local expert)
  std::vector<int64_t> recv_counts_;  // world × local experts
};

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_MOE_LAYER_H_
