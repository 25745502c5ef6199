// SlowestProgress: the reporter furthest behind by iterations done, then by the order a point
// passes its stages (CHECK before MEASURE, although the enum numbers them the other way round).
#include "common/aggregate/progress.h"

#include <gtest/gtest.h>

namespace moecap {
namespace {

v1::Progress At(v1::Progress::Stage stage, int64_t done, int64_t total, int32_t ranks = 0) {
  v1::Progress p;
  p.set_stage(stage);
  p.set_phase(v1::PHASE_DECODE);
  p.set_iterations_done(done);
  p.set_iterations_total(total);
  p.set_ranks_reporting(ranks);
  return p;
}

TEST(SlowestProgressTest, FewestIterationsThenTheEarlierStage) {
  v1::Progress slowest = SlowestProgress({At(v1::Progress::STAGE_MEASURE, 20, 40),
                                          At(v1::Progress::STAGE_REPORT, 40, 40),
                                          At(v1::Progress::STAGE_CHECK, 20, 40)});
  EXPECT_EQ(slowest.stage(), v1::Progress::STAGE_CHECK);
  EXPECT_EQ(slowest.iterations_done(), 20);

  slowest = SlowestProgress(
      {At(v1::Progress::STAGE_SETUP, 0, 0), At(v1::Progress::STAGE_MEASURE, 10, 40)});
  EXPECT_EQ(slowest.stage(), v1::Progress::STAGE_SETUP);
}

TEST(SlowestProgressTest, TotalsAreTheLargestAndRanksAreSummed) {
  // Two agents: one reports 3 ranks, the other none named (counts one).
  const v1::Progress slowest = SlowestProgress(
      {At(v1::Progress::STAGE_MEASURE, 10, 40, 3), At(v1::Progress::STAGE_MEASURE, 12, 0)});
  EXPECT_EQ(slowest.iterations_done(), 10);
  EXPECT_EQ(slowest.iterations_total(), 40);
  EXPECT_EQ(slowest.ranks_reporting(), 4);
  EXPECT_EQ(SlowestProgress({}).stage(), v1::Progress::STAGE_UNSPECIFIED);
}

}  // namespace
}  // namespace moecap
