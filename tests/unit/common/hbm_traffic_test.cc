// Physical HBM traffic under a layout (METRICS.md v2), worked by hand on the toy model's prefill.
#include "common/hbm_traffic.h"

#include <gtest/gtest.h>

#include "common/metrics.h"
#include "common/precision.h"
#include "tests/unit/common/test_models.h"

namespace moecap {
namespace {

using ::moecap::testing::DeepSeekV3;
using ::moecap::testing::ToyModel;

// METRICS.md's toy prefill (B = 2, P = 3): 2760 bytes, of which attention 2·2·192 = 768, router
// 2·2·32 = 128, routed experts 2·2·3.9375·96 = 1512, LM head 2·80 = 160, KV cache 192.
Counts ToyPrefill() {
  const ModelSpec m = ToyModel();
  return CountPrefillStep(m, MakePrecision(Dtype::kBf16), 2, 3, ExpectedActivatedExpertsSum(m, 6));
}

TEST(HbmTrafficTest, ToyPrefillTermsAreThoseOfTheWorkedExample) {
  const Counts c = ToyPrefill();
  EXPECT_DOUBLE_EQ(c[Term::kAttention].bytes, 768);
  EXPECT_DOUBLE_EQ(c[Term::kRouter].bytes, 128);
  EXPECT_DOUBLE_EQ(c[Term::kRoutedExperts].bytes, 1512);
  EXPECT_DOUBLE_EQ(c[Term::kLmHead].bytes, 160);
  EXPECT_DOUBLE_EQ(c[Term::kKvCache].bytes, 192);
}

TEST(HbmTrafficTest, DataParallelAttentionReplicatesAttentionDenseAndKvHeads) {
  // G = 4, t = 2, DP attention: r = 2 replicas; the one KV head sits on both ranks of a group.
  // Replication = (2−1)·(768 + 160) + (2−1)·128 + (2−1)·192 = 928 + 128 + 192 = 1248.
  const HbmTraffic h =
      PhysicalTraffic(ToyModel(), ToyPrefill(), {2, true}, 4, 0.5, 1000, "prefill", nullptr);
  EXPECT_DOUBLE_EQ(h.model_bytes, 2760);
  EXPECT_DOUBLE_EQ(h.replication_bytes, 1248);
  EXPECT_DOUBLE_EQ(h.bytes(), 4008);
  // 4008 B / (0.5 s · 4 · 1000 B/s) = 2.004.
  ASSERT_TRUE(h.utilization.has_value());
  EXPECT_DOUBLE_EQ(*h.utilization, 2.004);
}

TEST(HbmTrafficTest, WithoutDpAttentionTheRouterIsSharded) {
  // 928 + 0 + 192 = 1120.
  const HbmTraffic h =
      PhysicalTraffic(ToyModel(), ToyPrefill(), {2, false}, 4, {}, 1000, "prefill", nullptr);
  EXPECT_DOUBLE_EQ(h.replication_bytes, 1120);
  EXPECT_FALSE(h.utilization.has_value());
}

TEST(HbmTrafficTest, FullTensorParallelReadsWeightsOnceButCopiesTheKvHead) {
  // t = G = 4: one replica; the single KV head is on all 4 ranks: 3·192 = 576.
  const HbmTraffic h =
      PhysicalTraffic(ToyModel(), ToyPrefill(), {4, true}, 4, {}, 1000, "prefill", nullptr);
  EXPECT_DOUBLE_EQ(h.replication_bytes, 576);
  // t = 1 over G = 1: nothing is read twice.
  EXPECT_DOUBLE_EQ(PhysicalTraffic(ToyModel(), ToyPrefill(), {1, true}, 1, {}, 1000, "x", nullptr)
                       .replication_bytes,
                   0);
}

TEST(HbmTrafficTest, MlaLatentCacheIsWholeOnEveryRankOfAGroup) {
  const ReplicationFactors f = ReplicationOf(DeepSeekV3(), {8, true}, 16);
  EXPECT_DOUBLE_EQ(f.attention, 2);
  EXPECT_DOUBLE_EQ(f.dense, 2);
  EXPECT_DOUBLE_EQ(f.kv_cache, 8);
}

TEST(HbmTrafficTest, AnImpossibleUtilisationIsFlagged) {
  Validity v;
  // 4008 B in 1 s over 4 devices of 500 B/s: 200 %.
  PhysicalTraffic(ToyModel(), ToyPrefill(), {2, true}, 4, 1.0, 500, "prefill", &v);
  EXPECT_FALSE(v.valid);
  ASSERT_FALSE(v.reasons.empty());
  EXPECT_NE(v.reasons[0].find("prefill HBM utilisation"), std::string::npos) << v.reasons[0];
}

TEST(HbmTrafficTest, TheLayoutMustDivideTheDevices) {
  EXPECT_TRUE(ValidateLayout({2, false}, 8).ok());
  const absl::Status s = ValidateLayout({3, false}, 8);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_NE(s.message().find("tp: 3 does not divide the device count 8"), std::string::npos)
      << s.message();
  EXPECT_FALSE(ValidateLayout({0, false}, 8).ok());
}

}  // namespace
}  // namespace moecap
