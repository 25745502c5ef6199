// The exchange's figures by hand: nccl-tests' busbw of an all-to-all, DeepEP's remote bandwidth,
// the busiest rank's bytes over the time base, and the routing imbalance of a histogram.
#include "common/parallel_metrics.h"

#include <gtest/gtest.h>

namespace moecap {
namespace {

TEST(BusBandwidthTest, AllToAllFactorIsNMinusOneOverN) {
  EXPECT_DOUBLE_EQ(BusBandwidth(100, 2), 50);    // half of each rank's rows stay home
  EXPECT_DOUBLE_EQ(BusBandwidth(100, 8), 87.5);  // 7/8
  EXPECT_DOUBLE_EQ(BusBandwidth(100, 1), 0);     // nothing crosses a link
}

TEST(AllToAllBandwidthTest, BusiestRankOverTheTimeBase) {
  // Three ranks send 30, 90 and 60 bytes (remote 20, 60, 40) in 0.5 s.
  const AllToAllFigures f = AllToAllBandwidth({30, 90, 60}, {20, 60, 40}, 0.5);
  EXPECT_DOUBLE_EQ(f.logical_bytes, 180);
  EXPECT_DOUBLE_EQ(f.remote_bytes, 120);
  EXPECT_DOUBLE_EQ(f.algbw, 180);      // 90 / 0.5
  EXPECT_DOUBLE_EQ(f.busbw, 120);      // 180 · 2/3
  EXPECT_DOUBLE_EQ(f.remote_bw, 120);  // 60 / 0.5
  const AllToAllFigures untimed = AllToAllBandwidth({30}, {0}, 0);
  EXPECT_DOUBLE_EQ(untimed.logical_bytes, 30);
  EXPECT_DOUBLE_EQ(untimed.algbw, 0);
}

TEST(ImbalanceTest, BusiestExpertOverTheLayersMean) {
  // Layer 0: 12 pairs over 4 experts, mean 3, busiest 9: 3; layer 1 even: 1.
  const RoutingImbalance r = ImbalanceOf({{9, 3, 0, 0}, {2, 2, 2, 2}});
  ASSERT_EQ(r.per_layer.size(), 2u);
  EXPECT_DOUBLE_EQ(r.per_layer[0], 3);
  EXPECT_DOUBLE_EQ(r.per_layer[1], 1);
  EXPECT_DOUBLE_EQ(r.max, 3);
  // A subset's busiest against the layer's mean (a node holding experts 2 and 3 of layer 0).
  EXPECT_DOUBLE_EQ(ExpertImbalance(0, 12, 4), 0);
  EXPECT_DOUBLE_EQ(ExpertImbalance(3, 12, 4), 1);
  EXPECT_DOUBLE_EQ(ExpertImbalance(5, 0, 4), 0);  // no tokens
  EXPECT_DOUBLE_EQ(ImbalanceOf({{0, 0}}).max, 0);
}

}  // namespace
}  // namespace moecap
