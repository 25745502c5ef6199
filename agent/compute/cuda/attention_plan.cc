// The decode split choice, the workspace formula and the KV byte counts (attention_plan.h).
#include "agent/compute/cuda/attention_plan.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace moecap::cuda {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t RoundUp(int64_t a, int64_t multiple) { return CeilDiv(a, multiple) * multiple; }

absl::Status CheckPositive(int64_t value, absl::string_view field) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("decode attention plan: ", field, " is ", value, " (must be > 0)"));
}

}  // namespace

int64_t GqaDecodeHeadsPerBlock(int64_t group_size, Dtype kv_dtype) {
  const int64_t cap = kv_dtype == Dtype::kFp8 ? kGqaMaxHeadsPerBlockFp8 : kGqaMaxHeadsPerBlockBf16;
  int64_t heads = 1;
  while (heads < group_size && heads < cap) heads *= 2;
  return heads;
}

absl::StatusOr<DecodeAttentionPlan> PlanDecodeAttention(const DecodeAttentionShape& shape,
                                                        int64_t sm_count) {
  for (const auto& [value, field] : {std::pair<int64_t, const char*>{shape.seqs, "seqs"},
                                     {shape.heads, "heads"},
                                     {shape.kv_groups, "kv_groups"},
                                     {shape.blocks_per_group, "blocks_per_group"},
                                     {shape.head_dim_v, "head_dim_v"},
                                     {shape.max_context, "max_context"},
                                     {sm_count, "sm_count"}}) {
    if (absl::Status s = CheckPositive(value, field); !s.ok()) return s;
  }
  const int64_t context_tiles = RoundUp(shape.max_context, kDecodeKeyTile);
  const int64_t blocks_per_split = shape.seqs * shape.kv_groups * shape.blocks_per_group;
  const int64_t target_blocks = kDecodeTargetWaves * sm_count;
  DecodeAttentionPlan plan;
  if (blocks_per_split >= target_blocks) {
    plan.splits = 1;
    plan.keys_per_split = context_tiles;
  } else {
    const int64_t wanted = CeilDiv(target_blocks, blocks_per_split);
    const int64_t keys = RoundUp(CeilDiv(shape.max_context, wanted), kDecodeKeyTile);
    plan.keys_per_split = std::min(std::max(keys, kMinKeysPerSplit), context_tiles);
    plan.splits = CeilDiv(shape.max_context, plan.keys_per_split);
  }
  plan.workspace_bytes =
      DecodeWorkspaceBytes(shape.seqs, shape.heads, plan.splits, shape.head_dim_v);
  return plan;
}

absl::StatusOr<DecodeAttentionPlan> PlanGqaDecode(int64_t seqs, int64_t heads, int64_t kv_heads,
                                                  int64_t head_dim, Dtype kv_dtype,
                                                  int64_t max_context, int64_t sm_count) {
  if (kv_heads <= 0 || heads <= 0 || heads % kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("decode attention plan: heads ", heads,
                                                   " is not a positive multiple of kv_heads ",
                                                   kv_heads));
  }
  const int64_t group = heads / kv_heads;
  DecodeAttentionShape shape;
  shape.seqs = seqs;
  shape.heads = heads;
  shape.kv_groups = kv_heads;
  shape.blocks_per_group = CeilDiv(group, GqaDecodeHeadsPerBlock(group, kv_dtype));
  shape.head_dim_v = head_dim;
  shape.max_context = max_context;
  return PlanDecodeAttention(shape, sm_count);
}

absl::StatusOr<DecodeAttentionPlan> PlanMlaDecode(int64_t seqs, int64_t heads, int64_t kv_lora_rank,
                                                  int64_t max_context, int64_t sm_count) {
  DecodeAttentionShape shape;
  shape.seqs = seqs;
  shape.heads = heads;
  shape.kv_groups = 1;
  shape.blocks_per_group = heads > 0 ? CeilDiv(heads, kMlaHeadsPerBlock) : 0;
  shape.head_dim_v = kv_lora_rank;
  shape.max_context = max_context;
  return PlanDecodeAttention(shape, sm_count);
}

int64_t DecodeWorkspaceBytes(int64_t seqs, int64_t heads, int64_t splits, int64_t head_dim_v) {
  if (splits <= 1) return 0;
  return seqs * heads * splits * (head_dim_v + 2) * static_cast<int64_t>(sizeof(float));
}

double GqaDecodeKvBytes(int64_t seqs, int64_t context, int64_t kv_heads, int64_t head_dim,
                        int64_t window, Dtype kv_dtype) {
  const int64_t keys = window > 0 ? std::min(context, window) : context;
  return static_cast<double>(seqs) * static_cast<double>(keys) * static_cast<double>(kv_heads) *
         static_cast<double>(2 * head_dim) * DtypeBytes(kv_dtype);
}

double MlaDecodeKvBytes(int64_t seqs, int64_t context, int64_t kv_lora_rank, int64_t rope_dim,
                        Dtype cache_dtype) {
  return static_cast<double>(seqs) * static_cast<double>(context) *
         static_cast<double>(kv_lora_rank + rope_dim) * DtypeBytes(cache_dtype);
}

}  // namespace moecap::cuda
