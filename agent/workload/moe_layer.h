// One rank's side of an expert-parallel MoE layer stack. Per layer: gate (RMS norm, router GEMM,
// top-k or override), dispatch (all-to-all of per-expert counts, then all-to-all-v of the token
// rows, sorted by expert, to the ranks hosting them), experts (grouped SwiGLU GEMMs over the
// received rows; the shared experts over the rank's own tokens), combine (all-to-all-v back, then
// each token's weighted sum plus the residual).
#ifndef MOECAP_AGENT_WORKLOAD_MOE_LAYER_H_
#define MOECAP_AGENT_WORKLOAD_MOE_LAYER_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "agent/comm/communicator.h"
#include "agent/compute/compute_backend.h"
#include "agent/workload/attention.h"
#include "agent/workload/dense_ffn.h"
#include "agent/workload/layer_math.h"
#include "agent/workload/moe_engine.h"
#include "agent/workload/weights.h"
#include "common/model.h"

namespace moecap {

// The buffers of one rank's step, in bytes: what Prepare allocates and what the memory estimate
// counts, from this one plan.
struct MoeBufferPlan {
  size_t token_rows = 0;  // each of the own × d fp32 buffers (input, hidden ×2, normed, shared)
  int token_buffers = 5;  // how many: 6 with attention (its output)
  size_t act = 0;         // own × d in the dtype (bf16 only)
  size_t logits = 0;      // own × E fp32
  size_t pair_rows = 0;   // each of send and combined: own·k rows in the dtype
  size_t received_rows = 0;  // each of received and results: the most rows this rank can get
  size_t routing = 0;        // chosen (int32), weights (fp32) and slots (int64) of own·k pairs
  size_t scratch = 0;        // the expert GEMMs' chunk scratch
  int64_t Total() const;
  static MoeBufferPlan Of(const ModelSpec& scaled, Dtype dtype, int64_t own_tokens,
                          int64_t global_tokens, int world_size, bool attention);
};

// The host engine: computes with a host ComputeBackend, exchanges rows through a Communicator on
// host memory (Gloo, local).
class ExpertParallelMoe : public MoeEngine {
 public:
  // `scaled` is the model shape that runs; `weights` the rank's weights of it. All must outlive
  // this object.
  ExpertParallelMoe(const ModelSpec& scaled, const MoeWeights& weights, ComputeBackend& backend,
                    Communicator& comm);

  // Each rank receives at most global_tokens·min(k, local experts) rows: the buffers' size.
  absl::Status Prepare(int64_t own_tokens, int64_t global_tokens,
                       std::vector<std::vector<int32_t>> overrides, const float* input) override;
  absl::Status Step(PhaseTimes* times, StepTally* tally, RoutingRecord* record) override;
  absl::Status ReadOutput(float* output) override;

  // Decoder layers: each layer's MoE block then takes `attention`'s output for its input (the
  // attention prepared by the caller for the same rows; its time is PhaseTimes::attention).
  // Null: the MoE blocks alone. With `dense` (Prepare prepares it for the rank's rows), the stack
  // also holds dense layers, at the stack layers `dense_at` marks (StackDenseLayers; `attention`
  // then has one layer per entry): attention, then the dense FFN in place of the MoE block (its
  // time is PhaseTimes::dense_ffn). They must outlive this object.
  void SetAttention(AttentionStack* attention, DenseFfnLayers* dense = nullptr,
                    std::vector<bool> dense_at = {}) {
    attention_ = attention;
    dense_ = dense;
    dense_at_ = std::move(dense_at);
  }

  // The bytes Prepare allocates (for the memory estimate): MoeBufferPlan's total.
  static int64_t WorkBytes(const ModelSpec& scaled, Dtype dtype, int64_t own_tokens,
                           int64_t global_tokens, int world_size, bool attention = false);

 private:
  // The stack's layers: the MoE ones and, with dense layers, those.
  int64_t StackLayers() const {
    return weights_.layers() + (dense_at_.empty() ? 0 : static_cast<int64_t>(dense_->layers()));
  }
  absl::Status Layer(int64_t layer, const float* x, float* out, PhaseTimes* times, StepTally* tally,
                     RoutingRecord* record);

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
  bool stepped_ = false;  // whether hidden_ holds a step's output
  AttentionStack* attention_ = nullptr;
  DenseFfnLayers* dense_ = nullptr;
  std::vector<bool> dense_at_;  // by stack layer: a dense one (empty: none)
  Buffer attended_;             // own × d fp32: the layer's attention output (decoder layers)

  Buffer input_;       // own × d fp32: the prepared input
  Buffer hidden_[2];   // own × d fp32: layer outputs, ping-pong; the last layer's is the output
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
