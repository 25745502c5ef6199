// Plan validation, scaling, partitioning over ranks and the plan's JSON round trip.
#include "agent/workload/config.h"

#include <gtest/gtest.h>

#include "tests/unit/agent/test_util.h"
#include "tests/unit/common/test_models.h"

namespace moecap {
namespace {

WorkloadConfig MixtralPlan() {
  WorkloadConfig c;
  c.model = ::moecap::testing::Mixtral8x7b();
  return c;
}

TEST(PartitionTest, TokensSplitContiguouslyTheFirstRanksOneLarger) {
  // 10 tokens over 4 ranks: 3, 3, 2, 2 starting at 0, 3, 6, 8.
  const int64_t counts[] = {3, 3, 2, 2};
  const int64_t begins[] = {0, 3, 6, 8};
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(RankTokens(10, r, 4).count, counts[r]);
    EXPECT_EQ(RankTokens(10, r, 4).begin, begins[r]);
  }
  // One decode token over 4 ranks: rank 0 has it, the others none.
  EXPECT_EQ(RankTokens(1, 0, 4).count, 1);
  EXPECT_EQ(RankTokens(1, 3, 4).count, 0);
}

TEST(PartitionTest, ExpertsInEqualContiguousBlocks) {
  EXPECT_EQ(RankExperts(8, 2, 4).begin, 4);  // experts 4 and 5
  EXPECT_EQ(RankExperts(8, 2, 4).count, 2);
  EXPECT_EQ(RankExperts(256, 3, 4).begin, 192);
  EXPECT_EQ(RankExperts(256, 3, 4).count, 64);
}

TEST(ValidateWorkloadTest, RefusesWhatExpertParallelismCannotRun) {
  const WorkloadConfig c = MixtralPlan();
  EXPECT_TRUE(ValidateWorkload(c, 4).ok());
  absl::Status too_many = ValidateWorkload(c, 16);
  EXPECT_EQ(too_many.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_many.message().find("ranks 16 exceeds the routed experts"), std::string::npos)
      << too_many;
  EXPECT_NE(ValidateWorkload(c, 3).message().find("does not divide"), std::string::npos);

  WorkloadConfig zero_batch = c;
  zero_batch.batches = {1, 0};
  EXPECT_NE(ValidateWorkload(zero_batch, 2).message().find("batch 0"), std::string::npos);

  WorkloadConfig bad_histogram = c;
  bad_histogram.routing.mode = RoutingMode::kHistogram;
  bad_histogram.routing.histogram = {{1, 0, 0, 0, 0, 0, 0, 0}};  // k = 2 needs two experts
  EXPECT_NE(ValidateWorkload(bad_histogram, 2).message().find("positive share"), std::string::npos);
  bad_histogram.routing.histogram = {{1, 1}};
  EXPECT_NE(ValidateWorkload(bad_histogram, 2).message().find("expected 8"), std::string::npos);
}

TEST(ScaledModelTest, DividesHiddenAndExpertSizesOnly) {
  ModelSpec v3 = ::moecap::testing::DeepSeekV3();
  const ModelSpec scaled = ScaledModel(v3, 64);
  EXPECT_EQ(scaled.hidden_size, 112);     // 7168 / 64
  EXPECT_EQ(scaled.expert_ffn_size, 32);  // 2048 / 64
  EXPECT_EQ(scaled.shared_expert_ffn_size, 32);
  EXPECT_EQ(scaled.experts, 256);
  EXPECT_EQ(scaled.experts_per_token, 8);
  EXPECT_EQ(ScaledModel(v3, 100000).expert_ffn_size, 1);  // never below 1
}

}  // namespace
}  // namespace moecap
