// The launch geometry of the GPU attention kernels (attention_kernels.h), kept apart from them as
// plain host C++ so that it is unit-tested on machines without a GPU: how a decode step splits each
// sequence's keys across thread blocks (split-KV, flash-decoding), how many query heads one block
// serves, the workspace the splits' partial results need, and the KV bytes a decode call reads
// (the numerator of its bandwidth figure). The kernels call the same inline functions for the key
// ranges, so what the tests check is what the device runs.
#ifndef MOECAP_AGENT_COMPUTE_CUDA_ATTENTION_PLAN_H_
#define MOECAP_AGENT_COMPUTE_CUDA_ATTENTION_PLAN_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/dtype.h"

// The key-range helpers below run on the host and, compiled by nvcc, on the device (the same
// definition as agent/workload/random.h's).
#ifndef MOECAP_HOST_DEVICE
#if defined(__CUDACC__)
#define MOECAP_HOST_DEVICE __host__ __device__
#else
#define MOECAP_HOST_DEVICE
#endif
#endif

namespace moecap::cuda {

// Keys per split are a multiple of this (a decode block walks its keys in chunks of this many per
// pass of its warps) and at least kMinKeysPerSplit: below that, writing and merging a split's
// partial output costs more than the parallelism it adds.
inline constexpr int64_t kDecodeKeyTile = 64;
inline constexpr int64_t kMinKeysPerSplit = 256;
// The grid a decode launch aims for: this many waves of blocks over the SMs, so that the blocks of
// the last wave and the short splits at the ends of sequences leave few SMs idle.
inline constexpr int64_t kDecodeTargetWaves = 2;
// Query heads a GQA decode block serves: the heads of one KV group, at most 8 (bf16 cache) or 4
// (fp8), the most whose query slices stay in registers beside one 16-byte vector of the cache.
// Larger groups take several blocks, each reading the group's K/V (the later ones mostly from L2).
inline constexpr int64_t kGqaMaxHeadsPerBlockBf16 = 8;
inline constexpr int64_t kGqaMaxHeadsPerBlockFp8 = 4;
// Query heads an MLA decode block serves: their fp32 queries (576 wide) and the cache tile share
// the block's 48 KB of static shared memory. Blocks of the heads of one split run side by side
// (adjacent block ids), so a latent row comes from HBM once and from L2 for the other blocks.
inline constexpr int64_t kMlaHeadsPerBlock = 8;

// The heads one GQA decode block serves for a group of `group_size` query heads per KV head: the
// group rounded up to a power of two, capped by the cache dtype's maximum.
int64_t GqaDecodeHeadsPerBlock(int64_t group_size, Dtype kv_dtype);

// A decode launch's shape as far as the split choice goes.
struct DecodeAttentionShape {
  int64_t seqs = 0;
  int64_t heads = 0;             // query heads
  int64_t kv_groups = 0;         // GQA: kv_heads; MLA: 1 (one latent cache for all heads)
  int64_t blocks_per_group = 1;  // blocks that share one group's keys (heads / heads per block)
  int64_t head_dim_v = 0;        // output width per head (GQA head_dim, MLA kv_lora_rank)
  int64_t max_context = 0;       // the longest context the launch attends over (keys)
};

// Sequence s's keys are cut into `splits` ranges of `keys_per_split` (DecodeSplitBegin/End), each
// a block's work; with splits > 1 the blocks leave a partial result (max, sum, unnormalised
// output) per split and head in the workspace and a combine kernel merges them, with one split
// the block writes the output itself and no workspace is needed.
struct DecodeAttentionPlan {
  int64_t splits = 1;
  int64_t keys_per_split = 0;
  int64_t workspace_bytes = 0;
};

// The split choice: one split when seqs·kv_groups·blocks_per_group already fills
// kDecodeTargetWaves waves of `sm_count` SMs; otherwise enough splits to fill them, with
// keys_per_split rounded up to kDecodeKeyTile and at least kMinKeysPerSplit (or the whole
// context, rounded up to the tile, when that is shorter). InvalidArgument naming the field for
// non-positive sizes.
absl::StatusOr<DecodeAttentionPlan> PlanDecodeAttention(const DecodeAttentionShape& shape,
                                                        int64_t sm_count);

// The plans of the two decode kernels (their shapes filled in from the model's).
absl::StatusOr<DecodeAttentionPlan> PlanGqaDecode(int64_t seqs, int64_t heads, int64_t kv_heads,
                                                  int64_t head_dim, Dtype kv_dtype,
                                                  int64_t max_context, int64_t sm_count);
absl::StatusOr<DecodeAttentionPlan> PlanMlaDecode(int64_t seqs, int64_t heads, int64_t kv_lora_rank,
                                                  int64_t max_context, int64_t sm_count);

// The workspace of `splits` splits: per sequence, head and split, head_dim_v fp32 partial outputs,
// then (after all of those) the split's running max and sum, two fp32 each:
// seqs·heads·splits·(head_dim_v + 2)·4 bytes, 0 for one split.
int64_t DecodeWorkspaceBytes(int64_t seqs, int64_t heads, int64_t splits, int64_t head_dim_v);

// The first key a query at position `pos` attends to: pos − window + 1 with a sliding window
// (window > 0), else 0 — keys in (pos − window, pos], as FirstKey in agent/workload/attention.cc.
MOECAP_HOST_DEVICE inline int64_t FirstAttendedKey(int64_t pos, int64_t window) {
  return window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
}

// Split `split`'s keys of a sequence with `context` keys (0..context−1) and a sliding window
// (0: none) for the query at position context − 1: [begin, end), empty when begin ≥ end. Split i
// covers [i·kps, (i+1)·kps) of the keys, and the last split also every key after that, so a
// context longer than the plan was made for is still covered (only less evenly).
MOECAP_HOST_DEVICE inline int64_t DecodeSplitBegin(int64_t split, int64_t keys_per_split,
                                                   int64_t context, int64_t window) {
  const int64_t begin = split * keys_per_split;
  const int64_t first = FirstAttendedKey(context - 1, window);
  return begin > first ? begin : first;
}
MOECAP_HOST_DEVICE inline int64_t DecodeSplitEnd(int64_t split, int64_t splits,
                                                 int64_t keys_per_split, int64_t context) {
  const int64_t end = split + 1 == splits ? context : (split + 1) * keys_per_split;
  return end < context ? end : context;
}

// The KV-cache bytes one decode call reads (its bandwidth figure's numerator): GQA
// seqs·keys·kv_heads·(head_dim of K + head_dim of V)·bytes(dtype), keys = min(context, window)
// with a window; MLA seqs·context·(kv_lora_rank + rope)·bytes(dtype). The fp8 scales are left out
// (two floats).
double GqaDecodeKvBytes(int64_t seqs, int64_t context, int64_t kv_heads, int64_t head_dim,
                        int64_t window, Dtype kv_dtype);
double MlaDecodeKvBytes(int64_t seqs, int64_t context, int64_t kv_lora_rank, int64_t rope_dim,
                        Dtype cache_dtype);

}  // namespace moecap::cuda

#endif  // MOECAP_AGENT_COMPUTE_CUDA_ATTENTION_PLAN_H_
