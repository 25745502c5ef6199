// RankResult -> RankReport: real results of a 2-rank run on threads convert with exact counts
// (their sum is the metric core's CountMoeBlocks, sparse and dense), hand-checked routing and
// communication figures (activated experts, histogram, algbw/busbw), the measured loop and the
// check. (The percentiles builder, PercentilesOf, is tested with common/aggregate.)
#include "agent/workload/rank_report.h"

#include <gtest/gtest.h>

#include "common/plan/convert.h"
#include "tests/unit/agent/test_util.h"

namespace moecap {
namespace {

WorkloadConfig SmallMixtral() {
  WorkloadConfig c;
  c.model = testing::CatalogModel("mixtral-8x7b");
  c.scale = 64;  // d = 64, f_e = 224, E = 8, k = 2
  c.layers = 2;
  c.batches = {4};
  c.phases = {ServingPhase::kPrefill, ServingPhase::kDecode};
  c.prompt_len = 8;
  c.iterations = 3;
  c.warmup = 1;
  c.check = true;
  c.seed = 3;
  c.threads_per_rank = 1;
  c.comm_timeout_s = 20;
  return c;
}

TEST(RankReportTest, RealRanksConvertWithCountsThatAddUpToTheMetricCore) {
  const WorkloadConfig config = SmallMixtral();
  const std::vector<RankResult> results = testing::RunWorkloadOnThreads(config, 2);
  ASSERT_EQ(results.size(), 2u);
  std::vector<v1::RankReport> reports;
  for (const RankResult& result : results) {
    RankReportContext context{"job-7", 3, 2, "agent-9", 0};
    reports.push_back(RankReportFromResult(result, config, context));
  }
  const ModelSpec scaled = ScaledModel(config.model, config.scale);
  const Precision fp32 = MakePrecision(Dtype::kFp32);
  for (int p = 0; p < 2; ++p) {
    Counts counted;
    Counts dense;
    double tokens = 0;
    double activated = 0;
    for (size_t r = 0; r < 2; ++r) {
      const v1::RankReport& report = reports[r];
      EXPECT_EQ(report.job_id(), "job-7");
      EXPECT_EQ(report.point_index(), 3);
      EXPECT_EQ(report.attempt(), 2);
      EXPECT_EQ(report.agent_id(), "agent-9");
      EXPECT_EQ(report.rank(), static_cast<int>(r));
      EXPECT_EQ(report.local_experts(), 4);
      EXPECT_TRUE(report.check().checked());
      EXPECT_TRUE(report.check().passed()) << report.check().detail();
      ASSERT_EQ(report.phases_size(), 2);
      const v1::RankPhase& phase = report.phases(p);
      const RankPointResult& point = results[r].points[static_cast<size_t>(p)];
      EXPECT_EQ(phase.phase(), p == 0 ? v1::PHASE_PREFILL : v1::PHASE_DECODE);
      EXPECT_EQ(phase.iterations(), 3);
      ASSERT_EQ(phase.step_seconds_size(), 3);
      EXPECT_EQ(phase.step_seconds(1), point.samples.step[1]);
      EXPECT_EQ(phase.step_time().count(), 3);
      EXPECT_EQ(phase.tokens_per_step(), point.tally.own_tokens);
      EXPECT_EQ(phase.counts().total_bytes(), point.counts.counted.bytes());
      EXPECT_EQ(phase.counts().total_flops(), point.counts.counted.flops());
      // Per-layer activated experts add up to the rank's tally.
      ASSERT_EQ(phase.activated_experts_size(), 2);
      EXPECT_EQ(phase.activated_experts(0) + phase.activated_experts(1),
                static_cast<double>(point.tally.local_activated_sum));
      // The histogram covers the rank's experts, summed over the 3 timed steps.
      ASSERT_EQ(phase.expert_tokens().experts_size(), 4);
      EXPECT_EQ(phase.expert_tokens().experts(0), 4 * static_cast<int>(r));
      ASSERT_EQ(phase.expert_tokens().layers_size(), 2);
      EXPECT_EQ(phase.expert_tokens().layers(1).tokens(2),
                3 * point.global_histogram[1][4 * r + 2]);
      counted += TermCountsFromProto(phase.counts());
      dense += TermCountsFromProto(phase.dense_counts());
      tokens += static_cast<double>(phase.tokens_per_step());
      for (double a : phase.activated_experts()) activated += a;
    }
    EXPECT_EQ(tokens, p == 0 ? 32 : 4);  // B·P = 4·8 for prefill, B = 4 for decode
    const Counts expected = CountMoeBlocks(scaled, fp32, 2, tokens, activated);
    const Counts expected_dense =
        CountMoeBlocks(scaled, fp32, 2, tokens, activated, Counting::kDense);
    for (Term t : kAllTerms) {
      EXPECT_EQ(counted[t].bytes, expected[t].bytes) << TermName(t);
      EXPECT_EQ(counted[t].flops, expected[t].flops) << TermName(t);
      EXPECT_EQ(dense[t].bytes, expected_dense[t].bytes) << TermName(t);
      EXPECT_EQ(dense[t].flops, expected_dense[t].flops) << TermName(t);
    }
  }
}

TEST(RankReportTest, RoutingFiguresByHand) {
  // Mixtral (E = 8, k = 2) on 2 ranks; rank 1 holds experts 4..7. One layer, 6 tokens · 2 picks
  // = 12 pairs: experts get {4, 0, 0, 0, 6, 2, 0, 0}.
  WorkloadConfig config = SmallMixtral();
  config.layers = 1;
  RankResult result;
  result.rank = 1;
  result.world_size = 2;
  RankPointResult point;
  point.phase = ServingPhase::kDecode;
  point.batch = 6;
  point.tokens = 6;
  point.tally.own_tokens = 3;
  point.global_histogram = {{4, 0, 0, 0, 6, 2, 0, 0}};
  point.samples.step = {1.0, 3.0};  // two timed steps
  point.samples.dispatch = {0.5, 0.5};
  point.samples.combine = {0.5, 0.5};
  point.counts.comm.dispatch_logical = 100;
  point.counts.comm.combine_logical = 100;
  point.counts.comm.dispatch_remote = 60;
  point.counts.comm.combine_remote = 40;
  point.loop_seconds = 5;
  point.tally.pairs_computed = 8;
  point.check.ran = true;
  point.check.passed = true;
  point.check.near_ties = 1;
  result.points = {point};
  const v1::RankReport report = RankReportFromResult(result, config, {});
  ASSERT_EQ(report.phases_size(), 1);
  const v1::RankPhase& phase = report.phases(0);
  ASSERT_EQ(phase.activated_experts_size(), 1);
  EXPECT_EQ(phase.activated_experts(0), 2);  // experts 4 and 5
  EXPECT_EQ(phase.expert_tokens().experts(0), 4);
  EXPECT_EQ(phase.expert_tokens().layers(0).tokens(0), 12);  // 6 per step · 2 steps
  EXPECT_EQ(phase.expert_tokens().layers(0).tokens(1), 4);
  // algbw: (100 + 100) bytes / (0.5 + 0.5) s = 200 B/s; busbw over 2 ranks 200 · 1/2; DeepEP's
  // remote bandwidth (60 + 40) / 1 s.
  EXPECT_DOUBLE_EQ(phase.communication().algbw_bytes_per_s(), 200);
  EXPECT_DOUBLE_EQ(phase.communication().busbw_bytes_per_s(), 100);
  EXPECT_DOUBLE_EQ(phase.communication().remote_bw_bytes_per_s(), 100);
  EXPECT_DOUBLE_EQ(phase.step_time().mean(), 2.0);
  EXPECT_DOUBLE_EQ(phase.loop_seconds(), 5);
  EXPECT_EQ(phase.pairs_computed_per_step(), 8);
  EXPECT_TRUE(phase.check().checked());
  EXPECT_TRUE(phase.check().passed());
  EXPECT_EQ(phase.check().near_ties(), 1);
  EXPECT_TRUE(report.check().passed());
}

TEST(RankReportTest, ACheckThatFailedAnywhereFailsTheRank) {
  RankPointResult good;
  good.check.ran = true;
  good.check.passed = true;
  good.check.max_rel_error = 1e-6;
  good.check.tolerance = 1e-4;
  RankPointResult bad = good;
  bad.check.passed = false;
  bad.check.max_rel_error = 0.5;
  bad.check.routing_mismatches = 2;
  const v1::CheckResult check = CheckOf({good, bad});
  EXPECT_TRUE(check.checked());
  EXPECT_FALSE(check.passed());
  EXPECT_DOUBLE_EQ(check.max_rel_error(), 0.5);
  EXPECT_DOUBLE_EQ(check.rel_tolerance(), 1e-4);
  EXPECT_NE(check.detail().find("2 routing mismatch"), std::string::npos) << check.detail();
  EXPECT_TRUE(CheckOf({good}).passed());
}

}  // namespace
}  // namespace moecap
