// Cost formulas (METRICS.md, "Cost"), worked by hand.
#include "common/cost.h"

#include <gtest/gtest.h>

namespace moecap {
namespace {

HardwareSpec PricedGpu() {
  HardwareSpec hw;
  hw.name = "priced";
  hw.tdp_watts = 700;
  hw.purchase_usd = 30000;
  hw.cloud_usd_per_hour = 3.0;
  return hw;
}

TEST(CostTest, HourlyPriceBases) {
  const HardwareSpec hw = PricedGpu();
  absl::StatusOr<HourlyPrice> cloud = DeviceHourlyPrice(hw, {});
  ASSERT_TRUE(cloud.ok());
  EXPECT_DOUBLE_EQ(cloud->usd_per_device_hour, 3.0);
  EXPECT_EQ(cloud->basis, "cloud");

  PriceOptions given;
  given.usd_per_device_hour = 2.5;
  EXPECT_DOUBLE_EQ(DeviceHourlyPrice(hw, given)->usd_per_device_hour, 2.5);

  // $30,000 over 3 years (26,280 h) = 1.141552511 $/h, plus 0.7 kW · 0.15 $/kWh = 0.105.
  PriceOptions amortized;
  amortized.amortize_hours = 26280;
  absl::StatusOr<HourlyPrice> a = DeviceHourlyPrice(hw, amortized);
  ASSERT_TRUE(a.ok());
  EXPECT_NEAR(a->usd_per_device_hour, 1.246552511, 1e-9);
  EXPECT_EQ(a->basis, "amortized");
  EXPECT_EQ(a->energy_basis, "tdp");  // an estimate from the catalog's 700 W
  EXPECT_DOUBLE_EQ(a->watts_per_device, 700);

  // A measured 450 W instead of the TDP: 0.45 kW · 0.15 $/kWh = 0.0675 $/h.
  amortized.measured_watts_per_device = 450;
  a = DeviceHourlyPrice(hw, amortized);
  ASSERT_TRUE(a.ok());
  EXPECT_NEAR(a->usd_per_device_hour, 1.141552511 + 0.0675, 1e-9);
  EXPECT_EQ(a->energy_basis, "measured");
  EXPECT_EQ(DeviceHourlyPrice(hw, given)->energy_basis, "");  // a given price has no energy part
}

TEST(CostTest, MissingPriceNamesTheFlag) {
  HardwareSpec hw = PricedGpu();
  hw.cloud_usd_per_hour = 0;
  absl::StatusOr<HourlyPrice> p = DeviceHourlyPrice(hw, {});
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--usd-per-hour"), std::string::npos);
}

TEST(CostTest, BatchSecondsAndPricePerToken) {
  // t = TTFT + (O − 1)·TPOT = 0.5 + 9·0.05 = 0.95 s.
  EXPECT_DOUBLE_EQ(BatchSeconds(0.5, 0.05, 10), 0.95);
  EXPECT_DOUBLE_EQ(BatchSeconds(0.5, 0.05, 1), 0.5);
  // $3.60/h · 4 devices · 1000 s = $4.00 for 2,000,000 tokens: $2 per million.
  EXPECT_DOUBLE_EQ(UsdPerMillionTokens(3.6, 4, 1000, 2e6), 2.0);
}

TEST(CostTest, MoeCapSystemCost) {
  // 1.25·(30000·2 + 7214) + 1.2·((700·2 + 350)/1000 · 0.15 · 10 h)
  //   = 1.25·67,214 + 1.2·(1.75·0.15·10) = 84,017.5 + 3.15 = 84,020.65.
  EXPECT_NEAR(MoeCapSystemCostUsd(PricedGpu(), 2, 10), 84020.65, 1e-9);
}

}  // namespace
}  // namespace moecap
