// The layout rules both engines share: the receive-buffer bound and the overrides' shape.
#include "agent/workload/moe_engine.h"

#include <gtest/gtest.h>

namespace moecap {
namespace {

TEST(MaxReceivedRowsTest, AtMostOneRowPerLocalExpertAndKPerToken) {
  EXPECT_EQ(MaxReceivedRows(/*top_k=*/2, /*local_experts=*/4, /*global_tokens=*/10), 20);
  EXPECT_EQ(MaxReceivedRows(8, 2, 10), 20);  // 8 picks, but only 2 experts here: 2 rows a token
  EXPECT_EQ(MaxReceivedRows(8, 2, 0), 0);
}

TEST(CheckRoutingOverridesTest, OnePerLayerOfOwnTokensTimesK) {
  EXPECT_TRUE(CheckRoutingOverrides({}, 3, 4, 2).ok());  // the gate routes
  EXPECT_TRUE(
      CheckRoutingOverrides({std::vector<int32_t>(8), std::vector<int32_t>(8)}, 2, 4, 2).ok());
  absl::Status s = CheckRoutingOverrides({std::vector<int32_t>(8)}, 2, 4, 2);
  EXPECT_EQ(s.message(), "routing overrides for 1 layers, expected 2");
  s = CheckRoutingOverrides({std::vector<int32_t>(8), std::vector<int32_t>(6)}, 2, 4, 2);
  EXPECT_EQ(s.message(), "routing overrides: 6 choices in a layer, expected 8");
}

}  // namespace
}  // namespace moecap
