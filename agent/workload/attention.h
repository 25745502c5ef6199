// One rank's attention in a decoder layer stack: RMS norm, the QKV projection, rotary positions,
// scores over the sequence's KV cache (causal; a sliding window in the layers that have one),
// softmax, the weighted sum of values and the output projection, plus the residual. Data-parallel
// beside the expert-parallel MoE blocks (as DP-attention + EP serving runs it): every rank holds
// all attention weights and attends over its own share of the batch's sequences and their caches.
// GQA/MHA here; MLA is not built yet (Supports says so).
//
// The cache of a sequence holds `cached` earlier entries, generated from the seed as if earlier
// tokens had written them (unit variance), and the step's new tokens write theirs after them: a
// decode step at context c has c − 1 cached entries and one new token, a prefill of P fresh
// tokens none and P. A timed decode step rewrites the same slot, so every step does the same work.
#ifndef MOECAP_AGENT_WORKLOAD_ATTENTION_H_
#define MOECAP_AGENT_WORKLOAD_ATTENTION_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/compute/compute_backend.h"
#include "agent/workload/config.h"
#include "common/dtype.h"
#include "common/model.h"

namespace moecap {

// Whether this engine runs the model's attention; Unimplemented naming the kind when not.
absl::Status AttentionSupported(const ModelSpec& scaled);

// The rotary base: positions rotate pairs (i, i + d_h/2) by pos·base^(−2i/d_h).
inline constexpr double kRopeBase = 10000.0;

// Element (layer, sequence, kv head, position, i) of the generated cache, K or V: unit variance,
// a pure function of the seed so the reference regenerates it.
float CachedKvValue(uint64_t seed, int64_t layer, int64_t sequence, int64_t kv_head, bool value,
                    int64_t position, int64_t i);

// The attention weights of a stack, replicated on every rank: per layer W_qkv ((n_h + 2·n_kv)·d_h
// × d: the query heads, then the keys, then the values) and W_o (d × n_h·d_h).
class AttentionWeights {
 public:
  // With `lm_head`, also the LM head W_lm (V × d).
  static absl::StatusOr<AttentionWeights> Generate(ComputeBackend& backend, const ModelSpec& scaled,
                                                   int64_t layers, Dtype dtype, uint64_t seed,
                                                   bool lm_head = false);
  static int64_t Bytes(const ModelSpec& scaled, int64_t layers, Dtype dtype, bool lm_head = false);
  // Writes layer `layer`'s W_qkv and W_o exactly as Generate does (the reference uses it).
  static void Fill(ComputeBackend& backend, const ModelSpec& scaled, Dtype dtype, uint64_t seed,
                   int64_t layer, void* qkv, void* out);

  const void* qkv(int64_t layer) const { return layers_[layer].qkv.data(); }
  const void* out(int64_t layer) const { return layers_[layer].out.data(); }
  const void* lm_head() const { return lm_head_.data(); }  // null without the LM head
  Dtype dtype() const { return dtype_; }

 private:
  struct Layer {
    Buffer qkv;
    Buffer out;
  };
  Dtype dtype_ = Dtype::kFp32;
  std::vector<Layer> layers_;
  Buffer lm_head_;
};

class AttentionStack {
 public:
  // `scaled` and `weights` must outlive this object; `layers` is the stack's (IsSlidingLayer of
  // `scaled` says which layers keep a window).
  AttentionStack(const ModelSpec& scaled, const AttentionWeights& weights, int64_t layers,
                 uint64_t seed, ComputeBackend& backend);

  // Allocates the caches of `block` and fills their cached entries, and the step's scratch.
  absl::Status Prepare(const SequenceBlock& block);

  // out = x + Attention_layer(RmsNorm(x)) over the prepared block's rows (fp32, rows × d each;
  // they must not overlap). The new tokens' keys and values are written into the cache.
  absl::Status Forward(int64_t layer, const float* x, float* out);

  // The logits of each prepared sequence's last position (its last row of `x`, the stack's
  // output): the final RMS norm, then x·W_lmᵀ (V wide, fp32). FailedPrecondition without an LM
  // head in the weights.
  absl::Status LmHead(const float* x);
  bool has_lm_head() const { return weights_.lm_head() != nullptr; }

  // The bytes Prepare allocates for `block` (the memory estimate): the caches and the scratch.
  static int64_t CacheBytes(const ModelSpec& scaled, int64_t layers, Dtype dtype,
                            const SequenceBlock& block);

 private:
  const ModelSpec& model_;
  const AttentionWeights& weights_;
  ComputeBackend& backend_;
  int64_t layers_;
  uint64_t seed_;
  Dtype dtype_;
  int64_t heads_, kv_heads_, head_dim_, group_;
  SequenceBlock block_;
  int64_t capacity_ = 0;  // cache entries per sequence: cached + new_tokens
  // Per layer, sequence and KV head: K (capacity × d_h) and Vᵀ (d_h × capacity), in dtype, so
  // both products of the scores are MatMul's A·Wᵀ with the cache as W.
  std::vector<Buffer> keys_;
  std::vector<Buffer> values_t_;
  Buffer normed_, act_, qkv_, attn_, attn_act_, q_, scores_, probs_, o_;
  Buffer last_, logits_;                    // the LM head's input rows (dtype) and its output
  std::vector<float> rope_cos_, rope_sin_;  // new token t, pair i: [t·d_h/2 + i]
};

// The same attention in double precision from the seed (weights as `dtype` holds them, the cache
// regenerated), for the tests and the check: out = x + Attention_layer(RmsNorm(x)) for `block`.
void ReferenceAttention(ComputeBackend& host, const ModelSpec& scaled, Dtype dtype, uint64_t seed,
                        int64_t layer, const SequenceBlock& block, const double* x, double* out);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_ATTENTION_H_
