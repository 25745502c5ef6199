// Percentiles (linear interpolation between closest ranks) and summaries.
#include "agent/workload/stats.h"

#include <gtest/gtest.h>

namespace moecap {
namespace {

TEST(PercentileTest, InterpolatesBetweenClosestRanks) {
  const std::vector<double> v = {4, 1, 3, 2};  // sorted 1 2 3 4
  EXPECT_DOUBLE_EQ(Percentile(v, 50), 2.5);    // position 0.5·3 = 1.5
  EXPECT_DOUBLE_EQ(Percentile(v, 90), 3.7);    // position 2.7: 3 + 0.7
  EXPECT_DOUBLE_EQ(Percentile(v, 99), 3.97);   // position 2.97
  EXPECT_DOUBLE_EQ(Percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile(v, 100), 4);
  EXPECT_DOUBLE_EQ(Percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0);
}

TEST(SummaryTest, MeanMinMaxAndCount) {
  const Summary s = Summarize({1, 2, 3, 10});
  EXPECT_DOUBLE_EQ(s.mean, 4);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 10);
  EXPECT_DOUBLE_EQ(s.p50, 2.5);
  EXPECT_EQ(s.count, 4);
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
