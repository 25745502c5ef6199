// Router scoring, top-k, routing overrides and routing statistics, with hand-computed numbers.
#include "agent/workload/router.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "agent/workload/random.h"
#include "common/parallel_metrics.h"

namespace moecap {
namespace {

TEST(TopKTest, LargestFirstTiesToTheLowerIndex) {
  const float values[] = {0.1f, 0.5f, 0.3f, 0.5f, -1.0f};
  int32_t out[3];
  TopK(values, 5, 3, out);
  EXPECT_EQ(out[0], 1);  // 0.5 at index 1 beats the tie at index 3
  EXPECT_EQ(out[1], 3);
  EXPECT_EQ(out[2], 2);
  TopK(values, 5, 1, out);
  EXPECT_EQ(out[0], 1);
}

TEST(RouterScoresTest, SoftmaxAndSigmoid) {
  // softmax(0, ln 3) = (1, 3) / 4; sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4.
  const float logits[] = {0.0f, std::log(3.0f)};
  float scores[2];
  RouterScores(RouterScoring::kSoftmax, logits, 2, scores);
  EXPECT_NEAR(scores[0], 0.25, 1e-6);
  EXPECT_NEAR(scores[1], 0.75, 1e-6);
  RouterScores(RouterScoring::kSigmoid, logits, 2, scores);
  EXPECT_NEAR(scores[0], 0.5, 1e-6);
  EXPECT_NEAR(scores[1], 0.75, 1e-6);
}

TEST(ChosenWeightsTest, NormalisesTheSelectedScoresWhenAsked) {
  const float scores[] = {0.1f, 0.2f, 0.3f, 0.4f};
  const int32_t chosen[] = {3, 1};
  float w[2];
  ChosenWeights(scores, chosen, 2, /*normalize=*/true, w);
  EXPECT_NEAR(w[0], 0.4 / 0.6, 1e-6);  // 2/3
  EXPECT_NEAR(w[1], 0.2 / 0.6, 1e-6);  // 1/3
  ChosenWeights(scores, chosen, 2, /*normalize=*/false, w);
  EXPECT_FLOAT_EQ(w[0], 0.4f);
  EXPECT_FLOAT_EQ(w[1], 0.2f);
}

TEST(ChosenWeightsTest, DeepSeekV3SigmoidThenNormalise) {
  // sigmoid(ln 3) = 0.75, sigmoid(0) = 0.5: normalised 0.75/1.25 = 0.6 and 0.4.
  const float logits[] = {-2.0f, std::log(3.0f), 0.0f};
  float scores[3];
  RouterScores(RouterScoring::kSigmoid, logits, 3, scores);
  int32_t chosen[2];
  TopK(logits, 3, 2, chosen);
  float w[2];
  ChosenWeights(scores, chosen, 2, true, w);
  EXPECT_EQ(chosen[0], 1);
  EXPECT_EQ(chosen[1], 2);
  EXPECT_NEAR(w[0], 0.6, 1e-6);
  EXPECT_NEAR(w[1], 0.4, 1e-6);
}

TEST(OverrideChoicesTest, DistinctExpertsIndependentOfHowTokensAreSplit) {
  RoutingSpec routing;
  routing.mode = RoutingMode::kUniform;
  const std::vector<double> shares = OverrideShares(routing, 8, /*seed=*/7, /*layer=*/1);
  const std::vector<int32_t> all = OverrideChoices(shares, 3, 7, 1, 10, Range{0, 10});
  const std::vector<int32_t> head = OverrideChoices(shares, 3, 7, 1, 10, Range{0, 4});
  const std::vector<int32_t> tail = OverrideChoices(shares, 3, 7, 1, 10, Range{4, 6});
  std::vector<int32_t> joined = head;
  joined.insert(joined.end(), tail.begin(), tail.end());
  EXPECT_EQ(all, joined);  // rank splits agree with the single-rank reference
  for (int t = 0; t < 10; ++t) {
    const std::set<int32_t> experts(all.begin() + 3 * t, all.begin() + 3 * t + 3);
    EXPECT_EQ(experts.size(), 3u) << "token " << t;
    for (int32_t e : experts) EXPECT_TRUE(e >= 0 && e < 8);
  }
  // Another layer routes differently.
  EXPECT_NE(all, OverrideChoices(shares, 3, 7, 2, 10, Range{0, 10}));
}

TEST(OverrideChoicesTest, HistogramZeroSharesNeverReceiveTokens) {
  RoutingSpec routing;
  routing.mode = RoutingMode::kHistogram;
  routing.histogram = {{5, 0, 1, 0}};
  const std::vector<int32_t> chosen =
      OverrideChoices(OverrideShares(routing, 4, 1, 0), 2, 1, 0, 50, Range{0, 50});
  for (size_t i = 0; i < chosen.size(); i += 2) {
    // Only experts 0 and 2 have shares, and k = 2: every token gets exactly {0, 2}.
    EXPECT_EQ(std::set<int32_t>(chosen.begin() + i, chosen.begin() + i + 2),
              (std::set<int32_t>{0, 2}));
  }
}

std::vector<std::vector<int64_t>> Histogram(const RoutingSpec& routing, int64_t experts, int64_t k,
                                            int64_t tokens) {
  std::vector<std::vector<int64_t>> counts(1, std::vector<int64_t>(experts, 0));
  for (int32_t e :
       OverrideChoices(OverrideShares(routing, experts, 3, 0), k, 3, 0, tokens, Range{0, tokens})) {
    ++counts[0][e];
  }
  return counts;
}

TEST(OverrideChoicesTest, ZipfIsMoreImbalancedThanUniform) {
  RoutingSpec uniform;
  uniform.mode = RoutingMode::kUniform;
  RoutingSpec zipf;
  zipf.mode = RoutingMode::kZipf;
  zipf.zipf_exponent = 1.5;
  const RoutingImbalance u = ImbalanceOf(Histogram(uniform, 16, 2, 2000));
  const RoutingImbalance z = ImbalanceOf(Histogram(zipf, 16, 2, 2000));
  // Uniform: 4000 pairs over 16 experts, 250 each on average; the max stays near the mean.
  EXPECT_LT(u.max, 1.25);
  // Zipf 1.5 over 16 experts gives the hottest expert far more than its 1/16 share; drawing two
  // distinct experts caps it at one pair per token (2000 / 250 = 8).
  EXPECT_GT(z.max, 2.5);
  EXPECT_GT(z.max, u.max);
}

TEST(RandomTest, UniformStaysInRange) {
  for (uint64_t i = 0; i < 1000; ++i) {
    const float u = Uniform01(42, i);
    EXPECT_TRUE(u >= 0.0f && u < 1.0f);
    const double v = UniformOpen01(42, i);
    EXPECT_TRUE(v > 0.0 && v < 1.0);
  }
}

}  // namespace
}  // namespace moecap
