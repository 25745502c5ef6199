// GPU discovery without a build- or link-time dependency on the NVIDIA driver: NVML
// (libnvidia-ml.so.1) is loaded at run time, so the same binary starts on a host without a driver
// and reports zero GPUs with the reason. Each GPU's peaks (the S-MBU/S-MFU denominators) come from
// the hardware catalog, matched by the NVML device name; a GPU the catalog does not know keeps
// zero peaks, which the caller measures with the device probes.
#ifndef MOECAP_AGENT_COMPUTE_GPU_DISCOVERY_H_
#define MOECAP_AGENT_COMPUTE_GPU_DISCOVERY_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/catalog.h"
#include "common/dtype.h"
#include "common/hardware.h"

namespace moecap {

inline constexpr char kNvmlLibrary[] = "libnvidia-ml.so.1";

struct GpuInfo {
  int index = 0;           // NVML index (the CUDA ordinal unless CUDA_VISIBLE_DEVICES reorders)
  std::string name;        // "NVIDIA H100 80GB HBM3"
  std::string uuid;        // "GPU-..."
  std::string pci_bus_id;  // "00000000:18:00.0"
  int64_t memory_bytes = 0;
  int max_sm_clock_mhz = 0;
  int max_memory_clock_mhz = 0;
  double power_limit_watts = 0;  // power management limit (0: not reported)
  int nvlinks_active = 0;        // NVLink links up (0 on PCIe-only parts)

  // From the hardware catalog: its id ("h100-sxm"; empty when the name matched no entry), the
  // peak memory bandwidth in bytes/s and the dense peaks per dtype in FLOP/s (zeros / empty when
  // unknown), and where they came from, for logs.
  std::string hardware;
  double peak_bandwidth_bytes_s = 0;
  std::map<Dtype, double> peak_flops;
  double tdp_watts = 0;
  std::string peak_source;
};

struct GpuDiscovery {
  std::vector<GpuInfo> gpus;
  std::string driver_version;  // NVML's system driver version, when NVML loaded
  // Why `gpus` is empty ("NVML not found (libnvidia-ml.so.1): no NVIDIA driver on this host"),
  // for the log line; empty when GPUs were found.
  std::string reason;
};

// Lists the host's GPUs through NVML loaded from `library`. A library that cannot be loaded, or
// an NVML that does not initialise (no driver, no device), is not an error: zero GPUs and a
// reason. An error (Unavailable) only when NVML reports devices it then cannot describe.
absl::StatusOr<GpuDiscovery> DiscoverGpus(const Catalog& catalog,
                                          absl::string_view library = kNvmlLibrary);

// The catalog entry an NVML device name denotes: by name or alias ("NVIDIA H100 80GB HBM3" is an
// alias of h100-sxm), then without the "NVIDIA " prefix, then by display name; null when none.
// Only GPU entries match.
const HardwareSpec* MatchGpuHardware(const Catalog& catalog, absl::string_view device_name);

// Fills gpu->hardware, peaks, tdp_watts and peak_source from the catalog entry its name matches,
// or says in peak_source that the peaks must be measured.
void FillPeaksFromCatalog(const Catalog& catalog, GpuInfo* gpu);

}  // namespace moecap

#endif  // MOECAP_AGENT_COMPUTE_GPU_DISCOVERY_H_
