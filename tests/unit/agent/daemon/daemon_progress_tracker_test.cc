// ProgressTracker: the slowest rank's stage and measured iterations, from the rank logs' lines.
#include <gtest/gtest.h>

#include "agent/daemon/progress_tracker.h"

namespace moecap::agentd {
namespace {

WorkloadConfig TwoPhases(bool check) {
  WorkloadConfig c;
  c.phases = {ServingPhase::kPrefill, ServingPhase::kDecode};
  c.iterations = 10;
  c.check = check;
  return c;
}

TEST(ProgressTrackerTest, FollowsTheSlowestRank) {
  ProgressTracker tracker({2, 3}, TwoPhases(/*check=*/true));
  v1::Progress p = tracker.Current();
  EXPECT_EQ(p.stage(), v1::Progress::STAGE_SETUP);
  EXPECT_EQ(p.iterations_total(), 20);  // 10 iterations × 2 phases
  EXPECT_EQ(p.ranks_reporting(), 0);

  tracker.ObserveLog(2, "some gloo noise\nrank 2: weights ready (0.01 s)\n");
  p = tracker.Current();
  EXPECT_EQ(p.stage(), v1::Progress::STAGE_SETUP);  // rank 3 has no weights yet
  EXPECT_EQ(p.ranks_reporting(), 1);

  tracker.ObserveLog(3, "rank 3: weights ready (0.02 s)\n");
  p = tracker.Current();
  EXPECT_EQ(p.stage(), v1::Progress::STAGE_CHECK);
  EXPECT_EQ(p.phase(), v1::PHASE_PREFILL);

  const std::string prefill_done =
      "rank 2: weights ready (0.01 s)\nrank 2: prefill batch 4: check passed (max abs 1e-7, max "
      "rel 2e-7)\nrank 2: prefill batch 4: measured\n";
  tracker.ObserveLog(2, prefill_done);
  tracker.ObserveLog(3,
                     "rank 3: weights ready (0.02 s)\nrank 3: prefill batch 4: check passed (max "
                     "abs 1e-7, max rel 2e-7)\n");
  p = tracker.Current();
  EXPECT_EQ(p.stage(), v1::Progress::STAGE_MEASURE);  // rank 3 measures prefill
  EXPECT_EQ(p.phase(), v1::PHASE_PREFILL);
  EXPECT_EQ(p.iterations_done(), 0);

  tracker.ObserveLog(3,
                     "rank 3: weights ready (0.02 s)\nrank 3: prefill batch 4: check passed\n"
                     "rank 3: prefill batch 4: measured\n");
  p = tracker.Current();
  EXPECT_EQ(p.stage(), v1::Progress::STAGE_CHECK);  // both on decode's check now
  EXPECT_EQ(p.phase(), v1::PHASE_DECODE);
  EXPECT_EQ(p.iterations_done(), 10);

  const std::string all =
      "rank R: weights ready\nrank R: prefill batch 4: check passed\nrank R: prefill batch 4: "
      "measured\nrank R: decode batch 4: check passed\nrank R: decode batch 4: measured\n";
  for (int r : {2, 3}) {
    std::string log = all;
    for (size_t at = log.find("rank R"); at != std::string::npos; at = log.find("rank R")) {
      log.replace(at, 6, "rank " + std::to_string(r));
    }
    tracker.ObserveLog(r, log);
  }
  p = tracker.Current();
  EXPECT_EQ(p.stage(), v1::Progress::STAGE_REPORT);
  EXPECT_EQ(p.iterations_done(), 20);
  EXPECT_EQ(p.ranks_reporting(), 2);
}

TEST(ProgressTrackerTest, WithoutACheckRanksMeasureOnceTheyHaveTheirWeights) {
  ProgressTracker tracker({0}, TwoPhases(/*check=*/false));
  tracker.ObserveLog(0, "rank 0: weights ready (0.5 s)\n");
  EXPECT_EQ(tracker.Current().stage(), v1::Progress::STAGE_MEASURE);
  tracker.ObserveLog(7, "rank 7: weights ready\n");  // not one of this agent's ranks: ignored
  EXPECT_EQ(tracker.Current().ranks_reporting(), 1);
}

}  // namespace
}  // namespace moecap::agentd
