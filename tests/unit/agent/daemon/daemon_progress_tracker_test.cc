// ProgressTracker: SETUP until every rank has reported, then the slowest rank's record; the
// point's total; ranks that are not this agent's ignored.
#include <gtest/gtest.h>

#include "agent/daemon/progress_tracker.h"

namespace moecap::agentd {
namespace {

WorkloadConfig TwoPhases() {
  WorkloadConfig c;
  c.phases = {ServingPhase::kPrefill, ServingPhase::kDecode};
  c.batches = {4};
  c.iterations = 10;
  c.check = true;
  return c;
}

v1::Progress At(v1::Progress::Stage stage, v1::Phase phase, int64_t done) {
  v1::Progress p;
  p.set_stage(stage);
  p.set_phase(phase);
  p.set_iterations_done(done);
  p.set_iterations_total(20);
  p.set_ranks_reporting(1);
  return p;
}

TEST(ProgressTrackerTest, FollowsTheSlowestRank) {
  ProgressTracker tracker({2, 3}, TwoPhases());
  v1::Progress p = tracker.Current();
  EXPECT_EQ(p.stage(), v1::Progress::STAGE_SETUP);
  EXPECT_EQ(p.phase(), v1::PHASE_PREFILL);
  EXPECT_EQ(p.iterations_total(), 20);  // 10 iterations × 2 phases × 1 batch size
  EXPECT_EQ(p.ranks_reporting(), 0);

  tracker.Observe(2, At(v1::Progress::STAGE_CHECK, v1::PHASE_PREFILL, 0));
  p = tracker.Current();
  EXPECT_EQ(p.stage(), v1::Progress::STAGE_SETUP);  // rank 3 has not reported yet
  EXPECT_EQ(p.ranks_reporting(), 1);

  tracker.Observe(3, At(v1::Progress::STAGE_MEASURE, v1::PHASE_PREFILL, 0));
  p = tracker.Current();
  EXPECT_EQ(p.stage(), v1::Progress::STAGE_CHECK);  // rank 2 still checks: the check comes first
  EXPECT_EQ(p.ranks_reporting(), 2);

  tracker.Observe(2, At(v1::Progress::STAGE_CHECK, v1::PHASE_DECODE, 10));
  p = tracker.Current();
  EXPECT_EQ(p.stage(), v1::Progress::STAGE_MEASURE);  // now rank 3, on prefill, is behind
  EXPECT_EQ(p.phase(), v1::PHASE_PREFILL);
  EXPECT_EQ(p.iterations_done(), 0);

  for (int r : {2, 3}) tracker.Observe(r, At(v1::Progress::STAGE_REPORT, v1::PHASE_DECODE, 20));
  p = tracker.Current();
  EXPECT_EQ(p.stage(), v1::Progress::STAGE_REPORT);
  EXPECT_EQ(p.iterations_done(), 20);
}

TEST(ProgressTrackerTest, RanksThatAreNotThisAgentsAreIgnored) {
  ProgressTracker tracker({0}, TwoPhases());
  tracker.Observe(7, At(v1::Progress::STAGE_MEASURE, v1::PHASE_DECODE, 10));
  EXPECT_EQ(tracker.Current().stage(), v1::Progress::STAGE_SETUP);
  EXPECT_EQ(tracker.Current().ranks_reporting(), 0);
  tracker.Observe(0, At(v1::Progress::STAGE_MEASURE, v1::PHASE_PREFILL, 0));
  EXPECT_EQ(tracker.Current().stage(), v1::Progress::STAGE_MEASURE);
  EXPECT_EQ(tracker.Current().ranks_reporting(), 1);
}

}  // namespace
}  // namespace moecap::agentd
