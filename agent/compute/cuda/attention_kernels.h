// The GPU attention kernels of the decoder layer, the counterparts of the CPU engine's attention
// (agent/workload/attention.h) with the same math: scores q·k scaled by `softmax_scale` (the
// caller passes 1/sqrt(d_qk)), causal, a sliding window keeping the keys in (pos − window, pos],
// softmax, the weighted sum of values; fp32 accumulation throughout.
// - GqaDecodeAttention: GQA/MHA split-KV flash-decoding, one new query token per sequence.
// - MlaDecodeAttention: MLA's absorbed decode over the latent cache (queries already taken into
//   the latent space through W_UK).
// - PrefillAttention: causal tiled prefill (flash-attention style, online softmax) over the cache,
//   for GQA and for MLA's expanded form (d_qk 192, d_v 128).
// Caches are bf16, or fp8 e4m3 with one fp32 scale per cache tensor (real value = scale · stored,
// as vLLM's k_scale/v_scale). Every function only enqueues work on `stream`: it checks its host
// arguments first (InvalidArgument naming the field; these checks need no device), then launches
// and returns the launch status. None allocates or synchronises, so a step that calls them can be
// captured in a CUDA graph; the decode kernels take a caller-owned workspace sized by their plan
// (attention_plan.h). Device-side values (context lengths, cached counts) are trusted: a context
// must be ≤ the cache capacity. Pointers are device pointers; the caches and q need 16-byte
// alignment (cudaMalloc gives 256).
#ifndef MOECAP_AGENT_COMPUTE_CUDA_ATTENTION_KERNELS_H_
#define MOECAP_AGENT_COMPUTE_CUDA_ATTENTION_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "agent/compute/cuda/attention_plan.h"
#include "common/dtype.h"

namespace moecap::cuda {

// One decode step's GQA/MHA attention: out[s][h] = softmax_j(scale · q[s][h]·K[s][j][g]) ·
// V[s][j][g] over the keys j of sequence s (0..context_lens[s]−1, the window's last `window` of
// them when window > 0), g = h / (heads / kv_heads). Each block serves the query heads of one KV
// group (up to GqaDecodeHeadsPerBlock of them) for one split of a sequence's keys, so a K/V byte
// is read once per step.
struct GqaDecodeArgs {
  const float* q = nullptr;  // [seqs][heads][head_dim], fp32, rotary positions applied
  int64_t seqs = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;           // divides heads
  int64_t head_dim = 0;           // 64 or 128
  const void* k_cache = nullptr;  // [seqs][capacity][kv_heads][head_dim] in kv_dtype
  const void* v_cache = nullptr;  // the same layout
  Dtype kv_dtype = Dtype::kBf16;  // kBf16 or kFp8 (e4m3)
  float k_scale = 1.0f;           // fp8 only
  float v_scale = 1.0f;
  int64_t capacity = 0;                   // cache entries per sequence
  const int32_t* context_lens = nullptr;  // [seqs], device; the new token's entry is written
  int64_t window = 0;                     // sliding window, 0 = none
  float softmax_scale = 1.0f;
  float* out = nullptr;  // [seqs][heads][head_dim], fp32
};
// `plan` comes from PlanGqaDecode for these shapes (any plan with splits ≥ 1 and keys_per_split
// ≥ 1 is correct; the last split takes the keys beyond splits·keys_per_split); `workspace` holds
// at least DecodeWorkspaceBytes(seqs, heads, plan.splits, head_dim) bytes (none for one split).
absl::Status GqaDecodeAttention(const GqaDecodeArgs& args, const DecodeAttentionPlan& plan,
                                void* workspace, size_t workspace_bytes, cudaStream_t stream);

// One decode step's MLA attention in the absorbed form over the latent cache:
// out[s][h] = softmax_j(scale · q_latent[s][h]·C[s][j]) · C[s][j][:kv_lora_rank] (times the
// cache scale for fp8), C the latent cache rows (kv_lora_rank latent values, then rope).
struct MlaDecodeArgs {
  const float* q_latent = nullptr;  // [seqs][heads][kv_lora_rank + rope_dim], fp32
  int64_t seqs = 0;
  int64_t heads = 0;                 // 1..128
  int64_t kv_lora_rank = 0;          // 512
  int64_t rope_dim = 0;              // 64
  const void* cache = nullptr;       // [seqs][capacity][kv_lora_rank + rope_dim] in cache_dtype
  Dtype cache_dtype = Dtype::kBf16;  // kBf16 or kFp8 (e4m3)
  float cache_scale = 1.0f;          // fp8 only
  int64_t capacity = 0;
  const int32_t* context_lens = nullptr;  // [seqs], device
  float softmax_scale = 1.0f;
  float* out = nullptr;  // [seqs][heads][kv_lora_rank], fp32
};
// `plan` from PlanMlaDecode; `workspace` as for GqaDecodeAttention with head_dim_v =
// kv_lora_rank.
absl::Status MlaDecodeAttention(const MlaDecodeArgs& args, const DecodeAttentionPlan& plan,
                                void* workspace, size_t workspace_bytes, cudaStream_t stream);

// A prefill's attention: each sequence's `new_tokens` queries, query t at position c + t where
// c = cached[s] (the entries before it, already in the cache with the new tokens' after them),
// over the keys (pos − window, pos] (window 0: [0, pos]). out[s][t][h] = softmax_j(scale ·
// q[s][t][h]·K[s][j][g]) · V[s][j][g], g = h / (heads / kv_heads). MLA's expanded prefill is the
// case kv_heads == heads, head_dim_qk 192, head_dim_v 128. Computed with fp32 CUDA-core math.
struct PrefillAttentionArgs {
  const void* q = nullptr;       // [seqs][new_tokens][heads][head_dim_qk] in q_dtype
  Dtype q_dtype = Dtype::kFp32;  // kFp32 or kBf16
  int64_t seqs = 0;
  int64_t new_tokens = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;           // divides heads
  int64_t head_dim_qk = 0;        // 64, 128 or 192
  int64_t head_dim_v = 0;         // 64 or 128
  const void* k_cache = nullptr;  // [seqs][capacity][kv_heads][head_dim_qk] in kv_dtype
  const void* v_cache = nullptr;  // [seqs][capacity][kv_heads][head_dim_v] in kv_dtype
  Dtype kv_dtype = Dtype::kBf16;  // kBf16 or kFp8 (e4m3)
  float k_scale = 1.0f;
  float v_scale = 1.0f;
  int64_t capacity = 0;             // ≥ cached[s] + new_tokens
  const int32_t* cached = nullptr;  // [seqs], device; null: no cached entries
  int64_t window = 0;
  float softmax_scale = 1.0f;
  float* out = nullptr;  // [seqs][new_tokens][heads][head_dim_v], fp32
};
absl::Status PrefillAttention(const PrefillAttentionArgs& args, cudaStream_t stream);

// The step's new tokens into the attention: for row r = s·new_tokens + t of `qkv` (fp32, each row
// the query heads, then the keys, then the values, head_dim each, as the kQkv projection writes
// them), rotates the pairs (i, i + head_dim/2) of every query and key head by rope_cos/sin[t]
// (new_tokens × head_dim/2 fp32, the rotations of position cached + t), writes the rotated
// queries to q_out ([rows][heads][head_dim] fp32, the layout GqaDecodeAttention and
// PrefillAttention read) and the rotated keys and the values, rounded to bf16, into entry
// cached + t of sequence s of the caches ([seqs][capacity][kv_heads][head_dim]). The rotation is
// fp32 a·cos − b·sin, a·sin + b·cos, as the CPU engine's.
struct RopeAppendArgs {
  const float* qkv = nullptr;
  int64_t seqs = 0;
  int64_t new_tokens = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;  // even
  int64_t cached = 0;    // the entries before the new tokens, the same for every sequence
  int64_t capacity = 0;  // >= cached + new_tokens
  const float* rope_cos = nullptr;
  const float* rope_sin = nullptr;
  float* q_out = nullptr;
  void* k_cache = nullptr;  // bf16
  void* v_cache = nullptr;  // bf16
};
absl::Status RopeAndAppendKv(const RopeAppendArgs& args, cudaStream_t stream);

// out[i] = out[i] + x[i] for i < count (fp32): the residual after the output projection.
absl::Status AddInPlace(const float* x, int64_t count, float* out, cudaStream_t stream);

}  // namespace moecap::cuda

#endif  // MOECAP_AGENT_COMPUTE_CUDA_ATTENTION_KERNELS_H_
