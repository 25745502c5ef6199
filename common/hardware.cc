// Hardware entry checks and peak look-ups.
#include "common/hardware.h"

#include "absl/strings/str_cat.h"

namespace moecap {

absl::Status ValidateHardware(const HardwareSpec& hw) {
  auto field_error = [&](absl::string_view field, absl::string_view reason) {
    return absl::InvalidArgumentError(
        absl::StrCat("hardware '", hw.name, "': field '", field, "': ", reason));
  };
  if (hw.name.empty()) return absl::InvalidArgumentError("hardware: field 'name': empty");
  if (hw.memory_bytes < 0) return field_error("memory_gib", "must not be negative");
  if (hw.peak_bandwidth_bytes_s < 0) {
    return field_error("memory_bandwidth_gb_s", "must not be negative");
  }
  for (const auto& [dtype, flops] : hw.peak_flops) {
    if (flops <= 0) {
      return field_error(absl::StrCat("peak_tflops.", DtypeName(dtype)), "must be positive");
    }
  }
  if (hw.tdp_watts < 0) return field_error("tdp_watts", "must not be negative");
  if (hw.purchase_usd < 0) return field_error("purchase_usd", "must not be negative");
  if (hw.cloud_usd_per_hour < 0) return field_error("cloud_usd_per_hour", "must not be negative");
  return absl::OkStatus();
}

absl::StatusOr<double> PeakFlops(const HardwareSpec& hw, Dtype dtype) {
  auto it = hw.peak_flops.find(dtype);
  if (it == hw.peak_flops.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("hardware '", hw.name, "' has no ", DtypeName(dtype),
                     " peak FLOP/s in the catalog; give one with --peak-tflops"));
  }
  return it->second;
}

absl::StatusOr<double> PeakBandwidth(const HardwareSpec& hw) {
  if (hw.peak_bandwidth_bytes_s <= 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("hardware '", hw.name,
                     "' has no peak memory bandwidth in the catalog (it is measured); give one "
                     "with --peak-bandwidth-gb-s"));
  }
  return hw.peak_bandwidth_bytes_s;
}

}  // namespace moecap
