// A device moecap measures: its peaks (the denominators of S-MBU and S-MFU) and its prices.
#ifndef MOECAP_COMMON_HARDWARE_H_
#define MOECAP_COMMON_HARDWARE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/dtype.h"

namespace moecap {

enum class DeviceKind { kGpu, kCpu };

struct HardwareSpec {
  std::string name;          // canonical catalog id, lower case ("h100-sxm")
  std::string display_name;  // "NVIDIA H100 SXM5 80GB"
  // Other spellings that resolve to this entry, e.g. the device names serving systems record
  // ("NVIDIA-H100-80GB-HBM3"). Matched case-insensitively.
  std::vector<std::string> aliases;
  std::string source;  // datasheet and price sources, with dates
  DeviceKind kind = DeviceKind::kGpu;

  double memory_bytes = 0;            // device memory
  double peak_bandwidth_bytes_s = 0;  // peak memory bandwidth, bytes/s (0: must be measured)
  // Dense (not 2:4-sparse) peak FLOP/s per dtype; a dtype missing here is not supported.
  std::map<Dtype, double> peak_flops;
  double tdp_watts = 0;
  double purchase_usd = 0;        // one device, list or street price
  double cloud_usd_per_hour = 0;  // one device, on-demand cloud price
};

absl::Status ValidateHardware(const HardwareSpec& hw);

// The device's dense peak for a dtype, or FailedPrecondition naming the hardware and the dtype
// (and saying how to give a peak) when the catalog has none.
absl::StatusOr<double> PeakFlops(const HardwareSpec& hw, Dtype dtype);
// The peak bandwidth, or FailedPrecondition when the entry needs a measured one (generic CPU).
absl::StatusOr<double> PeakBandwidth(const HardwareSpec& hw);

}  // namespace moecap

#endif  // MOECAP_COMMON_HARDWARE_H_
