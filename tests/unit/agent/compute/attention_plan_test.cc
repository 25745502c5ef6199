// The GPU attention kernels' launch plan (agent/compute/cuda/attention_plan.h), on the CPU: the
// split choice on worked shapes, the workspace formula, the key ranges the decode blocks take
// (every attended key exactly once) and the KV bytes of the bandwidth figure.
#include "agent/compute/cuda/attention_plan.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace moecap::cuda {
namespace {

constexpr int64_t kH100Sms = 132;

TEST(AttentionPlanTest, HeadsPerBlockIsTheGroupUpToTheDtypeCap) {
  EXPECT_EQ(GqaDecodeHeadsPerBlock(1, Dtype::kBf16), 1);
  EXPECT_EQ(GqaDecodeHeadsPerBlock(3, Dtype::kBf16), 4);  // rounded up to a power of two
  EXPECT_EQ(GqaDecodeHeadsPerBlock(4, Dtype::kBf16), 4);  // Mixtral: 32 / 8
  EXPECT_EQ(GqaDecodeHeadsPerBlock(8, Dtype::kBf16), 8);  // gpt-oss: 64 / 8
  EXPECT_EQ(GqaDecodeHeadsPerBlock(16, Dtype::kBf16), 8);
  EXPECT_EQ(GqaDecodeHeadsPerBlock(8, Dtype::kFp8), 4);
  EXPECT_EQ(GqaDecodeHeadsPerBlock(1, Dtype::kFp8), 1);
}

TEST(AttentionPlanTest, MixtralDecodeAtBatch8SplitsToFillTwoWaves) {
  // 8 sequences · 8 KV heads · 1 block per group = 64 blocks < 2 · 132: ceil(264 / 64) = 5
  // splits wanted, ceil(4096 / 5) = 820 keys rounded up to 64 → 832, ceil(4096 / 832) = 5 splits.
  absl::StatusOr<DecodeAttentionPlan> plan =
      PlanGqaDecode(8, 32, 8, 128, Dtype::kBf16, 4096, kH100Sms);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->splits, 5);
  EXPECT_EQ(plan->keys_per_split, 832);
  // 8 seqs · 32 heads · 5 splits · (128 outputs + max + sum) · 4 bytes.
  EXPECT_EQ(plan->workspace_bytes, 8 * 32 * 5 * 130 * 4);
  EXPECT_EQ(plan->workspace_bytes, 665600);
}

TEST(AttentionPlanTest, OneSplitWithoutWorkspaceWhenTheGridIsFull) {
  // 64 · 8 = 512 blocks ≥ 264 already.
  absl::StatusOr<DecodeAttentionPlan> plan =
      PlanGqaDecode(64, 32, 8, 128, Dtype::kBf16, 4096, kH100Sms);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->splits, 1);
  EXPECT_EQ(plan->keys_per_split, 4096);
  EXPECT_EQ(plan->workspace_bytes, 0);
}

TEST(AttentionPlanTest, ShortContextsStayInOneSplit) {
  // 8 blocks want 33 splits of 4 keys, but a split takes at least 256 keys (and no more than the
  // context rounded up to the tile, 128): one split.
  absl::StatusOr<DecodeAttentionPlan> plan =
      PlanGqaDecode(1, 32, 8, 128, Dtype::kBf16, 100, kH100Sms);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->splits, 1);
  EXPECT_EQ(plan->keys_per_split, 128);
  EXPECT_EQ(plan->workspace_bytes, 0);
}

TEST(AttentionPlanTest, SplitsNeverGoBelowTheMinimumKeys) {
  // One block wants 264 splits of ceil(10000 / 264) = 38 → 64 keys; the minimum makes it 256, so
  // ceil(10000 / 256) = 40 splits.
  absl::StatusOr<DecodeAttentionPlan> plan =
      PlanGqaDecode(1, 1, 1, 64, Dtype::kFp8, 10000, kH100Sms);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->keys_per_split, kMinKeysPerSplit);
  EXPECT_EQ(plan->splits, 40);
  EXPECT_EQ(plan->workspace_bytes, 1 * 1 * 40 * 66 * 4);
}

TEST(AttentionPlanTest, LargeGroupsCountTheirHeadBlocks) {
  // 16 heads on one KV head: two blocks of 8 heads per group, so 4 · 1 · 2 = 8 blocks per split.
  // ceil(264 / 8) = 33 wanted → ceil(8192 / 33) = 249 → 256 keys → 32 splits.
  absl::StatusOr<DecodeAttentionPlan> plan =
      PlanGqaDecode(4, 16, 1, 128, Dtype::kBf16, 8192, kH100Sms);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->splits, 32);
  EXPECT_EQ(plan->keys_per_split, 256);
}

TEST(AttentionPlanTest, DeepSeekMlaDecode) {
  // 128 heads in blocks of 8: 16 blocks per sequence, 8 · 16 = 128 < 264 → 3 splits wanted,
  // ceil(4096 / 3) = 1366 → 1408 keys, ceil(4096 / 1408) = 3 splits.
  absl::StatusOr<DecodeAttentionPlan> plan = PlanMlaDecode(8, 128, 512, 4096, kH100Sms);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->splits, 3);
  EXPECT_EQ(plan->keys_per_split, 1408);
  EXPECT_EQ(plan->workspace_bytes, 8 * 128 * 3 * 514 * 4);
  EXPECT_EQ(plan->workspace_bytes, 6316032);
}

TEST(AttentionPlanTest, BadShapesNameTheField) {
  DecodeAttentionShape shape;
  shape.seqs = 0;
  shape.heads = 8;
  shape.kv_groups = 2;
  shape.head_dim_v = 64;
  shape.max_context = 10;
  absl::StatusOr<DecodeAttentionPlan> plan = PlanDecodeAttention(shape, kH100Sms);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("seqs is 0"), absl::string_view::npos) << plan.status();
  shape.seqs = 1;
  plan = PlanDecodeAttention(shape, 0);
  EXPECT_NE(plan.status().message().find("sm_count"), absl::string_view::npos) << plan.status();
  plan = PlanGqaDecode(1, 6, 4, 64, Dtype::kBf16, 10, kH100Sms);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("kv_heads 4"), absl::string_view::npos) << plan.status();
  EXPECT_FALSE(PlanGqaDecode(1, 8, 2, 64, Dtype::kBf16, 0, kH100Sms).ok());
}

TEST(AttentionPlanTest, WorkspaceFormula) {
  EXPECT_EQ(DecodeWorkspaceBytes(3, 8, 1, 128), 0);  // one split writes the output directly
  EXPECT_EQ(DecodeWorkspaceBytes(3, 8, 2, 128), 3 * 8 * 2 * 130 * 4);
  EXPECT_EQ(DecodeWorkspaceBytes(1, 1, 5, 64), 5 * 66 * 4);
}

// Every key the query at position context − 1 attends to is in exactly one split, and no other
// key is in any, for plans that fit the context, overshoot it and fall short of it.
TEST(AttentionPlanTest, SplitsCoverEveryAttendedKeyOnce) {
  struct Case {
    int64_t splits, keys_per_split;
  };
  for (const Case plan :
       {Case{1, 64}, Case{5, 64}, Case{2, 64}, Case{3, 256}, Case{40, 256}, Case{7, 1}}) {
    for (const int64_t context : {0, 1, 37, 63, 64, 65, 300, 1000}) {
      for (const int64_t window : {0, 1, 16, 64, 5000}) {
        std::vector<int> seen(static_cast<size_t>(context), 0);
        for (int64_t split = 0; split < plan.splits; ++split) {
          const int64_t begin = DecodeSplitBegin(split, plan.keys_per_split, context, window);
          const int64_t end = DecodeSplitEnd(split, plan.splits, plan.keys_per_split, context);
          for (int64_t key = begin; key < end; ++key) {
            ASSERT_GE(key, 0);
            ASSERT_LT(key, context);
            ++seen[static_cast<size_t>(key)];
          }
        }
        const int64_t first = FirstAttendedKey(context - 1, window);
        for (int64_t key = 0; key < context; ++key) {
          EXPECT_EQ(seen[static_cast<size_t>(key)], key >= first ? 1 : 0)
              << "splits " << plan.splits << " × " << plan.keys_per_split << ", context " << context
              << ", window " << window << ", key " << key;
        }
      }
    }
  }
}

TEST(AttentionPlanTest, FirstAttendedKeyKeepsTheWindow) {
  EXPECT_EQ(FirstAttendedKey(10, 0), 0);
  EXPECT_EQ(FirstAttendedKey(10, 4), 7);  // keys 7, 8, 9, 10: (10 − 4, 10]
  EXPECT_EQ(FirstAttendedKey(2, 4), 0);
  EXPECT_EQ(FirstAttendedKey(3, 4), 0);
  EXPECT_EQ(FirstAttendedKey(4, 4), 1);
}

TEST(AttentionPlanTest, KvBytesOfADecodeCall) {
  // Mixtral-8x7B per GPU at batch 8, context 4096: 8 · 4096 · 8 KV heads · (128 + 128) · 2 bytes.
  EXPECT_DOUBLE_EQ(GqaDecodeKvBytes(8, 4096, 8, 128, 0, Dtype::kBf16), 134217728.0);  // 128 MiB
  EXPECT_DOUBLE_EQ(GqaDecodeKvBytes(8, 4096, 8, 128, 0, Dtype::kFp8), 67108864.0);
  // A 1024-key window reads a quarter of it; a window longer than the context changes nothing.
  EXPECT_DOUBLE_EQ(GqaDecodeKvBytes(8, 4096, 8, 128, 1024, Dtype::kBf16), 33554432.0);
  EXPECT_DOUBLE_EQ(GqaDecodeKvBytes(8, 4096, 8, 128, 8192, Dtype::kBf16), 134217728.0);
  // DeepSeek-V3 MLA: 8 · 4096 · (512 + 64) · 2 bytes, whatever the head count.
  EXPECT_DOUBLE_EQ(MlaDecodeKvBytes(8, 4096, 512, 64, Dtype::kBf16), 37748736.0);
  EXPECT_DOUBLE_EQ(MlaDecodeKvBytes(8, 4096, 512, 64, Dtype::kFp8), 18874368.0);
}

}  // namespace
}  // namespace moecap::cuda
