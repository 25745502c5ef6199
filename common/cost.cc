// Cost formulas of METRICS.md.
#include "common/cost.h"

#include "absl/strings/str_cat.h"

namespace moecap {

absl::StatusOr<HourlyPrice> DeviceHourlyPrice(const HardwareSpec& hw, const PriceOptions& options) {
  if (options.usd_per_device_hour.has_value()) {
    return HourlyPrice{*options.usd_per_device_hour, "given"};
  }
  if (options.amortize_hours.has_value()) {
    if (hw.purchase_usd <= 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "hardware '", hw.name, "' has no purchase price in the catalog; give --usd-per-hour"));
    }
    const bool measured = options.measured_watts_per_device.has_value();
    const double watts = measured ? *options.measured_watts_per_device : hw.tdp_watts;
    const double energy = watts / 1000.0 * options.usd_per_kwh;
    return HourlyPrice{hw.purchase_usd / *options.amortize_hours + energy, "amortized",
                       measured ? "measured" : "tdp", watts};
  }
  if (hw.cloud_usd_per_hour <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("hardware '", hw.name,
                     "' has no cloud price in the catalog; give --usd-per-hour or "
                     "--amortize-hours"));
  }
  return HourlyPrice{hw.cloud_usd_per_hour, "cloud"};
}

double BatchSeconds(double ttft_s, double tpot_s, int64_t output_len) {
  return ttft_s + static_cast<double>(output_len - 1) * tpot_s;
}

double UsdPerMillionTokens(double usd_per_device_hour, double devices, double seconds,
                           double tokens) {
  return usd_per_device_hour * devices * (seconds / 3600.0) / tokens * 1e6;
}

double MoeCapSystemCostUsd(double gpu_usd, double gpu_tdp_watts, double devices, double run_hours) {
  // Its constants: CPU_COST 7214, CPU_TDP 350 W, 0.15 $/kWh; the scale named for capital (1.2)
  // multiplies the energy and the one named for energy (1.25) the capital.
  return 1.25 * (gpu_usd * devices + 7214.0) +
         1.2 * ((gpu_tdp_watts * devices + 350.0) / 1000.0 * 0.15 * run_hours);
}

double MoeCapSystemCostUsd(const HardwareSpec& hw, double devices, double run_hours) {
  return MoeCapSystemCostUsd(hw.purchase_usd, hw.tdp_watts, devices, run_hours);
}

}  // namespace moecap
