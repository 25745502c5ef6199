// The weights of a stack of MoE layers as one rank holds them: router and shared experts on every
// rank (replicated, as in expert-parallel serving), routed experts only for the rank's block.
// Values are seeded and counter-based (random.h): uniform with variance 1/fan_in, so activations
// keep their scale through the stack, and any rank can regenerate any expert exactly.
#ifndef MOECAP_AGENT_WORKLOAD_WEIGHTS_H_
#define MOECAP_AGENT_WORKLOAD_WEIGHTS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/compute/compute_backend.h"
#include "agent/workload/config.h"
#include "common/dtype.h"
#include "common/model.h"

namespace moecap {

// Matrix sizes of one MoE layer. Weights are stored output by output (n × k, as nn.Linear and
// ComputeBackend::MatMul take them). The S shared experts act as one SwiGLU expert of width S·f_s
// (their gate/up rows stacked, their down columns side by side), which computes exactly their sum.
struct LayerShape {
  int64_t hidden = 0;      // d
  int64_t expert_ffn = 0;  // f_e
  int64_t experts = 0;     // E
  int64_t top_k = 0;       // k
  int64_t shared_ffn = 0;  // S·f_s, 0 without shared experts

  static LayerShape Of(const ModelSpec& scaled);
  int64_t GateUpElements() const { return hidden * 2 * expert_ffn; }  // 2f_e × d
  int64_t DownElements() const { return expert_ffn * hidden; }        // d × f_e
};

class MoeWeights {
 public:
  // Generates `layers` layers for a rank hosting routed experts `local` (a block of E).
  static absl::StatusOr<MoeWeights> Generate(ComputeBackend& backend, const ModelSpec& scaled,
                                             int64_t layers, Dtype dtype, uint64_t seed,
                                             Range local);

  // The bytes Generate allocates for this rank (the memory estimate uses it before allocating).
  static int64_t BytesPerRank(const ModelSpec& scaled, int64_t layers, Dtype dtype,
                              int64_t local_experts);

  const void* router(int64_t layer) const { return layers_[layer].router.data(); }  // E × d
  // Routed expert `local_expert` (0-based within the rank's block): 2f_e × d and d × f_e.
  const void* gate_up(int64_t layer, int64_t local_expert) const;
  const void* down(int64_t layer, int64_t local_expert) const;
  // 2·S·f_s × d and d × S·f_s; null without shared experts.
  const void* shared_gate_up(int64_t layer) const { return layers_[layer].shared_gate_up.data(); }
  const void* shared_down(int64_t layer) const { return layers_[layer].shared_down.data(); }

  const LayerShape& shape() const { return shape_; }
  Range local_experts() const { return local_; }
  Dtype dtype() const { return dtype_; }
  int64_t layers() const { return static_cast<int64_t>(layers_.size()); }

 private:
  struct Layer {
    Buffer router;
    Buffer experts_gate_up;  // local experts back to back
    Buffer experts_down;
    Buffer shared_gate_up;
    Buffer shared_down;
  };
  LayerShape shape_;
  Dtype dtype_ = Dtype::kFp32;
  Range local_;
  std::vector<Layer> layers_;
};

// Fills `count` elements of `out` (in `dtype`) from stream `key`: uniform, variance 1/fan_in.
void FillWeights(ComputeBackend& backend, uint64_t key, int64_t count, int64_t fan_in, Dtype dtype,
                 void* out);

// Writes routed expert `expert` (global id) of `layer` exactly as MoeWeights::Generate does, into
// `gate_up` (2f_e × d) and `down` (d × f_e): the reference uses it for experts other ranks host.
void FillExpertWeights(ComputeBackend& backend, const LayerShape& shape, Dtype dtype, uint64_t seed,
                       int64_t layer, int64_t expert, void* gate_up, void* down);

// Input hidden states of tokens [first, first + count) of a step of `tokens_total` tokens: unit
// variance, a pure function of (seed, tokens_total, token), so every rank split sees the same
// tokens.
void FillInputRows(uint64_t seed, int64_t tokens_total, int64_t first, int64_t count,
                   int64_t hidden, float* out);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_WEIGHTS_H_
