// The ranks' counted shares add up to the metric core's CountMoeBlocks exactly; physical reads
// and wire bytes per rank. Hand numbers for a toy layer.
#include "agent/workload/counting.h"

#include <gtest/gtest.h>

#include "tests/unit/common/test_models.h"

namespace moecap {
namespace {

// METRICS.md's toy (d=8, E=4, k=2, f_e=4) plus one shared expert of f_s=4.
ModelSpec ToyWithShared() {
  ModelSpec m = ::moecap::testing::ToyModel();
  m.shared_experts = 1;
  m.shared_expert_ffn_size = 4;
  return m;
}

StepTally Tally(int64_t own, int64_t pairs, int64_t activated, int64_t to_self) {
  StepTally t;
  t.own_tokens = own;
  t.pairs_computed = pairs;
  t.local_activated_sum = activated;
  t.dispatch_rows_sent = own * 2 * 2;  // k = 2, two layers
  t.dispatch_rows_to_self = to_self;
  t.combine_rows_sent = pairs;
  t.combine_rows_to_self = to_self;
  return t;
}

TEST(CountRankStepTest, RankSharesSumToCountMoeBlocks) {
  const ModelSpec m = ToyWithShared();
  // Two layers, 5 tokens: rank 0 owns 3 and computed 6 pairs on its experts (3 of them active
  // over both layers); rank 1 owns 2 and computed 14 pairs (4 active). 6 + 14 = 5·2·2 pairs.
  const RankCounts r0 = CountRankStep(m, Dtype::kFp32, 2, Tally(3, 6, 3, 2), true);
  const RankCounts r1 = CountRankStep(m, Dtype::kFp32, 2, Tally(2, 14, 4, 3), false);
  Counts sum = r0.counted;
  sum += r1.counted;
  const Counts core = CountMoeBlocks(m, MakePrecision(Dtype::kFp32), 2, 5, 7);
  for (Term t : kAllTerms) {
    EXPECT_EQ(sum[t].bytes, core[t].bytes) << TermName(t);
    EXPECT_EQ(sum[t].flops, core[t].flops) << TermName(t);
  }
  // By hand: P_router = 32, P_shared = 1·3·8·4 = 96, P_expert = 3·8·4 = 96, p_w = 4.
  EXPECT_EQ(core[Term::kRouter].bytes, 4.0 * 2 * 32);                 // 256
  EXPECT_EQ(core[Term::kSharedExperts].bytes, 4.0 * 2 * 96);          // 768
  EXPECT_EQ(core[Term::kRoutedExperts].bytes, 4.0 * 7 * 96);          // 2688
  EXPECT_EQ(core[Term::kRouter].flops, 2.0 * 5 * 2 * 32);             // 640
  EXPECT_EQ(core[Term::kSharedExperts].flops, 2.0 * 5 * 2 * 96);      // 1920
  EXPECT_EQ(core[Term::kRoutedExperts].flops, 2.0 * 5 * 2 * 2 * 96);  // 3840
  // Rank 1 computed 14 of the 20 pairs: 2·14·96 = 2688 routed FLOPs; 4 experts read: 1536 bytes.
  EXPECT_EQ(r1.counted[Term::kRoutedExperts].flops, 2688);
  EXPECT_EQ(r1.counted[Term::kRoutedExperts].bytes, 1536);
}

TEST(CountRankStepTest, ReplicatedWeightsCountOnceButEveryRankReadsThem) {
  const ModelSpec m = ToyWithShared();
  const RankCounts r1 = CountRankStep(m, Dtype::kFp32, 2, Tally(2, 14, 4, 3), false);
  EXPECT_EQ(r1.counted[Term::kRouter].bytes, 0);
  EXPECT_EQ(r1.physical[Term::kRouter].bytes, 256);  // it did read the router: 4·2·32
  EXPECT_EQ(r1.physical[Term::kSharedExperts].bytes, 768);
  // A rank without tokens reads neither router nor shared experts.
  const RankCounts idle = CountRankStep(m, Dtype::kFp32, 2, Tally(0, 14, 4, 0), false);
  EXPECT_EQ(idle.physical[Term::kRouter].bytes, 0);
}

TEST(CountRankStepTest, WireBytesLogicalAndWithoutSelf) {
  const ModelSpec m = ToyWithShared();
  // Row = d·p = 8·4 = 32 bytes. Dispatch: 3 tokens·2·2 layers = 12 rows sent, 2 to itself.
  const RankCounts r = CountRankStep(m, Dtype::kFp32, 2, Tally(3, 6, 3, 2), true);
  EXPECT_EQ(r.comm.dispatch_logical, 12 * 32);
  EXPECT_EQ(r.comm.dispatch_remote, 10 * 32);
  EXPECT_EQ(r.comm.combine_logical, 6 * 32);
  EXPECT_EQ(r.comm.combine_remote, 4 * 32);
  // Activations: (6 pairs + 3 tokens·2 layers for the shared expert) rows in and out: 12·2·32.
  EXPECT_EQ(r.activation_bytes, 12 * 2 * 32);
}

}  // namespace
}  // namespace moecap
