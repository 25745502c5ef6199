// Worked examples of METRICS.md's formulas, computed by hand in the comments.
#include "common/metrics.h"

#include <gtest/gtest.h>

namespace moecap {
namespace {

// METRICS.md's toy model: d=8, V=10, L=2, L_dense=0, E=4, k=2, f_e=4, S=0, GQA n_h=2 n_kv=1 d_h=4.
ModelSpec ToyModel() {
  ModelSpec m;
  m.name = "toy";
  m.layers = 2;
  m.hidden_size = 8;
  m.vocab_size = 10;
  m.experts = 4;
  m.experts_per_token = 2;
  m.expert_ffn_size = 4;
  m.gqa = {.heads = 2, .kv_heads = 1, .head_dim = 4};
  return m;
}

TEST(MetricsTest, ToyDecodeStepMatchesMetricsDoc) {
  const ModelSpec m = ToyModel();
  // A(2) = 4·(1 − (1 − 2/4)^2) = 4·0.75 = 3 per layer, 6 over the 2 MoE layers.
  EXPECT_DOUBLE_EQ(ExpectedActivatedExperts(m, 2), 3.0);
  const Counts c = CountMeanDecodeStep(m, MakePrecision(Dtype::kBf16), 2, 3, 2,
                                       ExpectedActivatedExpertsSum(m, 2));
  // W = 2·[2·192 + 2·(32 + 3·96) + 80] = 2208; KV = 2·(B·c̄ = 2·4)·L·kv = 2·8·2·8 = 256.
  EXPECT_DOUBLE_EQ(c.bytes(), 2464.0);
  // F = 2·(1824 + 2·128) = 4160.
  EXPECT_DOUBLE_EQ(c.flops(), 4160.0);
}

}  // namespace
}  // namespace moecap
