// One rank's attention in a decoder layer stack: RMS norm, the projections, rotary positions,
// scores over the sequence's KV cache (causal; a sliding window in the layers that have one),
// softmax, the weighted sum of values and the output projection, plus the residual. Data-parallel
// beside the expert-parallel MoE blocks (as DP-attention + EP serving runs it): every rank holds
// all attention weights and attends over its own share of the batch's sequences and their caches.
//
// Two kinds, as the model has them:
// - GQA/MHA: per KV head a key and a value cache; query heads of a group share them.
// - MLA (DeepSeek-V2/V3): one latent cache per sequence, kv_lora_rank + qk_rope wide (the
//   compressed KV after its RMS norm, then the rotated key part all heads share). A decode step
//   runs the absorbed form serving engines run (FlashMLA, vLLM, SGLang): each head's query is
//   taken into the latent space through its key up-projection, scored against the latent and
//   rope parts, and the latent-weighted sum goes through the value up-projection. A prefill runs
//   the expanded form: the latent rows up-projected to per-head keys and values, then MHA. These
//   are the forms METRICS.md counts score FLOPs for.
//
// The cache of a sequence holds `cached` earlier entries, generated from the seed as if earlier
// tokens had written them (unit variance), and the step's new tokens write theirs after them: a
// decode step at context c has c − 1 cached entries and one new token, a prefill of P fresh
// tokens none and P. A timed decode step rewrites the same slot, so every step does the same work.
#ifndef MOECAP_AGENT_WORKLOAD_ATTENTION_H_
#define MOECAP_AGENT_WORKLOAD_ATTENTION_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/compute/compute_backend.h"
#include "agent/workload/config.h"
#include "common/dtype.h"
#include "common/model.h"

namespace moecap {

// Whether this engine runs the model's attention; InvalidArgument naming the fields when not.
absl::Status AttentionSupported(const ModelSpec& scaled);

// The rotary base: positions rotate pairs (i, i + r/2) of an r-wide rotary part by
// pos·base^(−2i/r) (GQA: the whole head, r = d_h; MLA: the qk_rope part).
inline constexpr double kRopeBase = 10000.0;

// Element (layer, sequence, kv head, position, i) of the generated cache, K or V (MLA: kv head 0,
// K, i over the latent then the rope part): unit variance, a pure function of the seed so the
// reference regenerates it.
float CachedKvValue(uint64_t seed, int64_t layer, int64_t sequence, int64_t kv_head, bool value,
                    int64_t position, int64_t i);

// The matrices of one layer's attention, as nn.Linear stores them (outputs × inputs).
// - GQA: kQkv ((n_h + 2·n_kv)·d_h × d: the query heads, then the keys, then the values), kOut
//   (d × n_h·d_h).
// - MLA: kQ (n_h·(nope + rope) × d, or × q_lora_rank after kQa, q_lora_rank × d, where the model
//   has a query LoRA), kKvA ((kv_lora_rank + rope) × d: the latent, then the shared rope key),
//   kKvB (n_h·(nope + v) × kv_lora_rank: per head its key rows, then its value rows), kOut
//   (d × n_h·v).
enum class AttentionPart { kQkv = 0, kQ, kQa, kKvA, kKvB, kOut };
inline constexpr int kAttentionParts = 6;

struct MatrixShape {
  int64_t rows = 0;  // outputs
  int64_t cols = 0;  // inputs
  int64_t size() const { return rows * cols; }
};
// `part`'s shape in `scaled`'s attention; 0 × 0 where the model has no such matrix. The sizes sum
// to AttentionParamsPerLayer (common/model.h).
MatrixShape AttentionPartShape(const ModelSpec& scaled, AttentionPart part);

// The attention weights of a stack, replicated on every rank, and the LM head when asked for.
// MLA also keeps, per layer, the key rows of kKvB transposed per head (n_h blocks of
// kv_lora_rank × nope), which the absorbed decode multiplies queries by, as serving engines keep
// them next to kKvB (vLLM's W_UK_T): more memory, not more bytes read by a pass.
class AttentionWeights {
 public:
  static absl::StatusOr<AttentionWeights> Generate(ComputeBackend& backend, const ModelSpec& scaled,
                                                   int64_t layers, Dtype dtype, uint64_t seed,
                                                   bool lm_head = false);
  // The bytes Generate allocates (the memory estimate).
  static int64_t Bytes(const ModelSpec& scaled, int64_t layers, Dtype dtype, bool lm_head = false);
  // Writes layer `layer`'s `part` exactly as Generate does (the reference uses it).
  static void Fill(ComputeBackend& backend, const ModelSpec& scaled, Dtype dtype, uint64_t seed,
                   int64_t layer, AttentionPart part, void* out);

  const void* part(int64_t layer, AttentionPart p) const {
    return layers_[layer].parts[static_cast<size_t>(p)].data();
  }
  const void* keys_up_t(int64_t layer) const { return layers_[layer].keys_up_t.data(); }  // MLA
  const void* lm_head() const { return lm_head_.data(); }  // null without the LM head
  Dtype dtype() const { return dtype_; }

 private:
  struct Layer {
    std::array<Buffer, kAttentionParts> parts;  // empty where the model has no such matrix
    Buffer keys_up_t;
  };
  Dtype dtype_ = Dtype::kFp32;
  std::vector<Layer> layers_;
  Buffer lm_head_;
};

// What the harness needs of an engine's attention (RunPoints): preparing it for a point's
// sequences. AttentionStack (the CPU engine) and CudaAttentionStack (agent/workload/cuda) each
// implement it; their Forward calls stay their engine's own, as they take host or device rows.
class DecoderAttention {
 public:
  virtual ~DecoderAttention() = default;
  // Allocates the caches of `block` and fills their cached entries, and the step's scratch.
  virtual absl::Status Prepare(const SequenceBlock& block) = 0;
};

class AttentionStack : public DecoderAttention {
 public:
  // `scaled` and `weights` must outlive this object; `layers` is the stack's (IsSlidingLayer of
  // `scaled` says which layers keep a window).
  AttentionStack(const ModelSpec& scaled, const AttentionWeights& weights, int64_t layers,
                 uint64_t seed, ComputeBackend& backend);

  // Allocates the caches of `block` and fills their cached entries, and the step's scratch.
  absl::Status Prepare(const SequenceBlock& block) override;

  // out = x + Attention_layer(RmsNorm(x)) over the prepared block's rows (fp32, rows × d each;
  // they must not overlap). The new tokens' cache entries are written into the cache.
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
  enum Scratch {
    kNormed,     // rows × d, fp32
    kAct,        // rows × d, dtype
    kProj,       // GQA: rows × (n_h + 2·n_kv)·d_h; MLA: rows × n_h·(nope + rope) queries; fp32
    kProjAct,    // MLA: the queries in dtype (the absorbed product's input)
    kLatent,     // MLA: rows × (kv_lora_rank + rope), fp32
    kQa,         // MLA with a query LoRA: rows × q_lora_rank, fp32
    kQaAct,      // ... in dtype
    kAttn,       // rows × n_h·v_head, fp32
    kAttnAct,    // ... in dtype
    kQ,          // one query block's queries, dtype
    kScores,     // one query block's scores, fp32
    kProbs,      // ... in dtype
    kO,          // one query block's outputs, fp32
    kExpanded,   // MLA prefill: a sequence's keys × n_h·(nope + v), fp32
    kHeadK,      // MLA prefill: one head's keys, keys × (nope + rope), fp32
    kHeadKAct,   // ... in dtype
    kHeadVt,     // MLA prefill: one head's values transposed, v × keys, fp32
    kHeadVtAct,  // ... in dtype
    kLatentQ,    // MLA decode: rows × n_h × (kv_lora_rank + rope) queries in latent space, fp32
    kLatentOut,  // MLA decode: rows × n_h × kv_lora_rank latent outputs, fp32
    kLatentOutAct,  // ... in dtype
    kScratchCount
  };
  // The buffers Prepare allocates, in bytes: the one place their sizes are worked out.
  struct BufferPlan {
    int64_t caches = 0;       // cache buffers: per layer and sequence (GQA: and KV head, K and V)
    int64_t cache_bytes = 0;  // each
    std::array<int64_t, kScratchCount> scratch{};  // bytes, by Scratch
    int64_t Total() const;
  };
  static BufferPlan Plan(const ModelSpec& scaled, int64_t layers, Dtype dtype,
                         const SequenceBlock& block);
  const void* AsDtype(const float* x, int64_t count, Buffer& scratch);
  absl::Status PrepareCaches();
  absl::Status ForwardGqa(int64_t layer, const float* x, float* out);
  absl::Status ForwardMla(int64_t layer, const float* x, float* out);
  absl::Status AbsorbedMla(int64_t layer, float* attn);
  absl::Status ExpandedMla(int64_t layer, float* attn);
  char* CacheEntry(size_t cache, int64_t position, int64_t width);

  const ModelSpec& model_;
  const AttentionWeights& weights_;
  ComputeBackend& backend_;
  int64_t layers_;
  uint64_t seed_;
  Dtype dtype_;
  SequenceBlock block_;
  int64_t capacity_ = 0;  // cache entries per sequence: cached + new_tokens
  int64_t rope_dim_ = 0;  // the rotary part: GQA the head, MLA qk_rope
  // GQA, per layer, sequence and KV head: K (capacity × d_h) and Vᵀ (d_h × capacity), in dtype,
  // so both products of the scores are MatMul's A·Wᵀ with the cache as W. MLA, per layer and
  // sequence: the latent rows (capacity × (kv_lora_rank + rope)) in keys_.
  std::vector<Buffer> keys_;
  std::vector<Buffer> values_t_;
  std::array<Buffer, kScratchCount> scratch_;
  Buffer last_, logits_;                    // the LM head's input rows (dtype) and its output
  std::vector<float> rope_cos_, rope_sin_;  // new token t, pair i: [t·rope_dim/2 + i]
};

// The same attention in double precision from the seed (weights as `dtype` holds them, the cache
// regenerated), for the tests and the check: out = x + Attention_layer(RmsNorm(x)) for `block`.
// MLA is computed in the absorbed form whatever the pass, so that the engine's expanded prefill
// is checked against the other algebra.
void ReferenceAttention(ComputeBackend& host, const ModelSpec& scaled, Dtype dtype, uint64_t seed,
                        int64_t layer, const SequenceBlock& block, const double* x, double* out);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_ATTENTION_H_
