// The energy the devices a rank uses draw over a timed window (METRICS.md v2 "Cost": energy), from
// the counters the hardware keeps: NVML's total-energy counter on a GPU (Volta and later), Linux
// powercap RAPL on a CPU package. Where no counter is readable the window's energy is not measured
// and the reason is kept, for the result to say "estimated from TDP" instead.
#ifndef MOECAP_AGENT_COMPUTE_ENERGY_METER_H_
#define MOECAP_AGENT_COMPUTE_ENERGY_METER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace moecap {

inline constexpr char kPowercapRoot[] = "/sys/class/powercap";

class EnergyMeter {
 public:
  virtual ~EnergyMeter() = default;
  // Joules since the meter was opened, non-decreasing: a counter that wrapped around is carried
  // over. Unavailable when a counter can no longer be read.
  virtual absl::StatusOr<double> Joules() = 0;
  // What it reads, for the result ("rapl: package-0, package-1"; "nvml: GPU 0").
  virtual const std::string& source() const = 0;
};

// The top-level RAPL zones under `powercap_root` (`intel-rapl:N`, one per CPU package; their
// subzones, core and dram, are parts of them or not on every machine, so they are not added).
// Null with the reason in `why` when there are none or none is readable (energy_uj is root-only
// on kernels since 5.10 unless made readable).
std::unique_ptr<EnergyMeter> OpenRaplMeter(const std::string& powercap_root, std::string* why);

// NVML's nvmlDeviceGetTotalEnergyConsumption (millijoules since the driver loaded) of the device
// with NVML index `device_index`, NVML loaded from `library`. Null with the reason in `why`.
std::unique_ptr<EnergyMeter> OpenNvmlEnergyMeter(const std::string& library, int device_index,
                                                 std::string* why);

}  // namespace moecap

#endif  // MOECAP_AGENT_COMPUTE_ENERGY_METER_H_
