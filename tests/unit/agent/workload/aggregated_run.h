// For the workload tests of both engines: a run's ranks aggregated as moecap-bench and the
// coordinator aggregate them, then held point by point to what must hold whatever the timing:
// the check passed (when `checked`), every token routed k times per layer, the counted terms equal
// to CountMoeBlocks for the measured activated experts (as computed here, and as the aggregator's
// own metric-core check says), a time for every measured step, a row per rank.
#ifndef MOECAP_TESTS_UNIT_AGENT_WORKLOAD_AGGREGATED_RUN_H_
#define MOECAP_TESTS_UNIT_AGENT_WORKLOAD_AGGREGATED_RUN_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/workload/config.h"
#include "agent/workload/harness.h"
#include "agent/workload/rank_report.h"
#include "agent/workload/report.h"
#include "common/aggregate/aggregator.h"
#include "common/metrics.h"
#include "common/plan/convert.h"
#include "common/precision.h"

namespace moecap::testing {

inline v1::Phase PhaseOf(ServingPhase phase) {
  return phase == ServingPhase::kPrefill ? v1::PHASE_PREFILL : v1::PHASE_DECODE;
}

// The ranks' in-process results as the rank processes would hand them back.
inline std::vector<v1::RankOutput> OutputsOf(const WorkloadConfig& c,
                                             const std::vector<RankResult>& ranks) {
  std::vector<v1::RankOutput> out;
  for (const RankResult& r : ranks) out.push_back(RankOutputFromResult(r, c, RankReportContext{}));
  return out;
}

inline void ExpectAggregatedConsistent(const WorkloadConfig& c,
                                       const std::vector<RankResult>& ranks, bool checked) {
  const ModelSpec scaled = ScaledModel(c.model, c.scale);
  Peaks peaks{1e11, 1e12, 1, "test"};
  absl::StatusOr<std::vector<v1::PointResult>> points =
      AggregateRanks(c, OutputsOf(c, ranks), peaks);
  ASSERT_TRUE(points.ok()) << points.status();
  ASSERT_EQ(points->size(), c.batches.size());
  ASSERT_EQ(ranks[0].points.size(), c.batches.size() * c.phases.size());
  for (const RankPointResult& point : ranks[0].points) {
    SCOPED_TRACE(absl::StrCat(ServingPhaseName(point.phase), " batch ", point.batch));
    const size_t b = static_cast<size_t>(
        std::find(c.batches.begin(), c.batches.end(), point.batch) - c.batches.begin());
    ASSERT_LT(b, points->size());
    const v1::PhaseResult* p = FindPhase((*points)[b], PhaseOf(point.phase));
    ASSERT_NE(p, nullptr);
    if (checked) {
      EXPECT_TRUE(p->check().checked());
      EXPECT_TRUE(p->check().passed()) << "max rel " << p->check().max_rel_error();
      EXPECT_EQ(p->check().routing_mismatches(), 0);
    }
    EXPECT_EQ(p->tokens_per_step(), point.tokens);
    // Every token picks k distinct experts in every layer.
    for (const auto& layer : point.global_histogram) {
      EXPECT_EQ(std::accumulate(layer.begin(), layer.end(), int64_t{0}),
                point.tokens * scaled.experts_per_token);
    }
    double activated = 0;
    for (double a : p->activated_experts()) activated += a;
    EXPECT_EQ(activated, ActivatedExpertsSum(point.global_histogram));
    // What `moecapctl analyze` counts for the same shape: the MoE blocks; a decoder stack's step
    // as analyze counts a whole model's (the stack as the model, the LM head left out).
    Counts core = CountMoeBlocks(scaled, MakePrecision(c.dtype), c.layers, point.tokens, activated);
    if (c.layer == LayerKind::kDecoder) {
      const ModelSpec stack = StackModel(scaled, c.layers, c.dense_layers);
      core = point.phase == ServingPhase::kPrefill
                 ? CountPrefillStep(stack, MakePrecision(c.dtype), point.batch, c.prompt_len,
                                    activated)
                 : CountMeanDecodeStep(stack, MakePrecision(c.dtype), point.batch, c.prompt_len,
                                       c.output_len, activated);
      if (!c.lm_head) core[Term::kLmHead] = TermCount{};
      if (c.lm_head) {
        EXPECT_EQ(p->sub_times().lm_head().count(), c.iterations);
      }
      EXPECT_EQ(p->sub_times().attention().count(), c.iterations);
      EXPECT_EQ(p->sub_times().dense_ffn().count(), c.dense_layers > 0 ? c.iterations : 0);
    }
    const Counts counted = TermCountsFromProto(p->breakdown());
    for (Term t : kAllTerms) {
      EXPECT_EQ(counted[t].bytes, core[t].bytes) << TermName(t);
      EXPECT_EQ(counted[t].flops, core[t].flops) << TermName(t);
    }
    EXPECT_TRUE(p->metric_core().checked());
    EXPECT_TRUE(p->metric_core().matches());
    EXPECT_GT(p->step_time().p50(), 0);
    EXPECT_EQ(p->step_time().count(), c.iterations);
    EXPECT_EQ(p->ranks_size(), static_cast<int>(ranks.size()));
  }
}

}  // namespace moecap::testing

#endif  // MOECAP_TESTS_UNIT_AGENT_WORKLOAD_AGGREGATED_RUN_H_
