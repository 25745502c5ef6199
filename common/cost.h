// Cost of a benchmark run (METRICS.md, "Cost"): the hourly price of the devices used, the price
// per million tokens of a batch, the system's purchase cost, and MoE-CAP's own system-cost figure.
#ifndef MOECAP_COMMON_COST_H_
#define MOECAP_COMMON_COST_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/hardware.h"

namespace moecap {

// How to price one device-hour. By default the catalog's cloud price; an explicit price wins; with
// `amortize_hours` set, the purchase price spread over that lifetime plus energy at TDP.
struct PriceOptions {
  std::optional<double> usd_per_device_hour;
  std::optional<double> amortize_hours;
  double usd_per_kwh = 0.15;
  // The devices' measured mean power (METRICS.md v2 "Cost"): prices the energy of an amortised
  // hour instead of the TDP.
  std::optional<double> measured_watts_per_device;
};

struct HourlyPrice {
  double usd_per_device_hour = 0;
  std::string basis;            // "cloud", "given" or "amortized"
  std::string energy_basis;     // amortized: "measured" or "tdp" (an estimate); else empty
  double watts_per_device = 0;  // amortized: the power its energy part is priced at
};

// FailedPrecondition (naming the hardware and the flag to use) when the catalog has no price.
absl::StatusOr<HourlyPrice> DeviceHourlyPrice(const HardwareSpec& hw, const PriceOptions& options);

// t = TTFT + (O − 1)·TPOT, the time a batch takes.
double BatchSeconds(double ttft_s, double tpot_s, int64_t output_len);

// H·G·(t/3600) / tokens · 1e6.
double UsdPerMillionTokens(double usd_per_device_hour, double devices, double seconds,
                           double tokens);

// MoE-CAP's system cost (its reference code, cost_utils.py): 1.25·(price·N + 7214) +
// 1.2·((TDP·N + 350 W)/1000 · 0.15 $/kWh · run hours): a purchase cost, not amortised.
double MoeCapSystemCostUsd(double gpu_usd, double gpu_tdp_watts, double devices, double run_hours);
// The same with the catalog's price and TDP of `hw`.
double MoeCapSystemCostUsd(const HardwareSpec& hw, double devices, double run_hours);

}  // namespace moecap

#endif  // MOECAP_COMMON_COST_H_
