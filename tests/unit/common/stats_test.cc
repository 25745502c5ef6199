// Percentiles (linear interpolation between the closest ranks, NumPy's default), summaries and
// element-wise extrema (common/stats.h). Every expected figure is worked out by hand in the
// comment beside it: the q-quantile of n sorted values x_0 <= ... <= x_{n-1} is at position
// q·(n − 1) = i + f (i whole, 0 <= f < 1), x_i + f·(x_{i+1} − x_i).
#include "common/stats.h"

#include <gtest/gtest.h>

#include <vector>

namespace moecap {
namespace {

TEST(PercentileTest, InterpolatesBetweenClosestRanks) {
  const std::vector<double> v = {1, 2, 3, 4};   // n − 1 = 3
  EXPECT_DOUBLE_EQ(Percentile(v, 0.5), 2.5);    // position 1.5: 2 + 0.5·(3 − 2)
  EXPECT_DOUBLE_EQ(Percentile(v, 0.9), 3.7);    // position 2.7: 3 + 0.7·(4 − 3)
  EXPECT_DOUBLE_EQ(Percentile(v, 0.99), 3.97);  // position 2.97: 3 + 0.97
  EXPECT_DOUBLE_EQ(Percentile(v, 0.25), 1.75);  // position 0.75: 1 + 0.75
}

TEST(PercentileTest, EndsAreTheMinimumAndTheMaximum) {
  const std::vector<double> v = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(Percentile(v, 0.0), 1);  // position 0
  EXPECT_DOUBLE_EQ(Percentile(v, 1.0), 4);  // position 3, the last rank
}

TEST(PercentileTest, AnExactRankNeedsNoInterpolation) {
  // n = 5, n − 1 = 4: q = 0.5 is position 2 exactly, the third smallest, 30; q = 0.75 is
  // position 3, 40.
  const std::vector<double> v = {10, 20, 30, 40, 50};
  EXPECT_DOUBLE_EQ(Percentile(v, 0.5), 30);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.75), 40);
}

TEST(PercentileTest, UnsortedInputIsRankedFirst) {
  // {4, 1, 3, 2} sorts to {1, 2, 3, 4}: the same figures as above.
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(Percentile(v, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.9), 3.7);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.99), 3.97);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.0), 1);
  EXPECT_DOUBLE_EQ(Percentile(v, 1.0), 4);
  // With ties: {5, 1, 5, 1, 3} sorts to {1, 1, 3, 5, 5}; q = 0.9 is position 3.6 between 5 and 5;
  // q = 0.3 is position 1.2: 1 + 0.2·(3 − 1) = 1.4.
  EXPECT_DOUBLE_EQ(Percentile({5, 1, 5, 1, 3}, 0.9), 5);
  EXPECT_DOUBLE_EQ(Percentile({5, 1, 5, 1, 3}, 0.3), 1.4);
}

TEST(PercentileTest, LeavesTheCallersValuesAlone) {
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(Percentile(v, 0.5), 2.5);
  EXPECT_EQ(v, (std::vector<double>{4, 1, 3, 2}));
}

TEST(PercentileTest, NoValuesGiveZeroAndOneValueIsEveryQuantile) {
  EXPECT_DOUBLE_EQ(Percentile({}, 0.5), 0);
  EXPECT_DOUBLE_EQ(Percentile({}, 0.0), 0);
  // n = 1: every position q·0 = 0.
  EXPECT_DOUBLE_EQ(Percentile({7}, 0.0), 7);
  EXPECT_DOUBLE_EQ(Percentile({7}, 0.5), 7);
  EXPECT_DOUBLE_EQ(Percentile({7}, 0.99), 7);
  EXPECT_DOUBLE_EQ(Percentile({7}, 1.0), 7);
}

TEST(PercentileTest, QOutsideZeroToOneIsClamped) {
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(Percentile(v, -0.5), 1);  // as q = 0
  EXPECT_DOUBLE_EQ(Percentile(v, 1.5), 4);   // as q = 1
  EXPECT_DOUBLE_EQ(Percentile(v, 99), 4);    // a percent by mistake: clamped to the maximum
}

TEST(SummaryTest, MeanMinMaxAndCount) {
  // Sorted {1, 2, 3, 10}: mean 16/4 = 4; p50 at 1.5: 2.5; p90 at 2.7: 3 + 0.7·7 = 7.9;
  // p99 at 2.97: 3 + 0.97·7 = 9.79.
  const Summary s = Summarize({1, 2, 3, 10});
  EXPECT_DOUBLE_EQ(s.mean, 4);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 10);
  EXPECT_DOUBLE_EQ(s.p50, 2.5);
  EXPECT_DOUBLE_EQ(s.p90, 7.9);
  EXPECT_DOUBLE_EQ(s.p99, 9.79);
  EXPECT_EQ(s.count, 4);
}

TEST(SummaryTest, AllZeroForNoValues) {
  const Summary s = Summarize({});
  EXPECT_EQ(s.count, 0);
  EXPECT_DOUBLE_EQ(s.mean, 0);
  EXPECT_DOUBLE_EQ(s.p99, 0);
  EXPECT_DOUBLE_EQ(s.max, 0);
}

TEST(SummaryTest, JsonHasEveryField) {
  const nlohmann::json j = SummaryToJson(Summarize({1, 2, 3, 10}));
  EXPECT_DOUBLE_EQ(j.at("p50").get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(j.at("p90").get<double>(), 7.9);
  EXPECT_DOUBLE_EQ(j.at("p99").get<double>(), 9.79);
  EXPECT_DOUBLE_EQ(j.at("mean").get<double>(), 4);
  EXPECT_DOUBLE_EQ(j.at("min").get<double>(), 1);
  EXPECT_DOUBLE_EQ(j.at("max").get<double>(), 10);
  EXPECT_EQ(j.at("count").get<int>(), 4);
}

TEST(ElementwiseMaxTest, TakesTheSlowestRankPerIteration) {
  const std::vector<double> a = {1, 5, 2};
  const std::vector<double> b = {3, 1, 2};
  EXPECT_EQ(ElementwiseMax({&a, &b}), (std::vector<double>{3, 5, 2}));
  EXPECT_EQ(ElementwiseMin({&a, &b}), (std::vector<double>{1, 1, 2}));  // the last to arrive
  EXPECT_TRUE(ElementwiseMin({}).empty());
}

}  // namespace
}  // namespace moecap
