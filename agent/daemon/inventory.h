// What this host offers the coordinator: the backend it runs, its devices with their peaks (the
// S-MBU/S-MFU denominators) and the host's facts, as the AgentInfo it registers with. On the CPU
// backend the host is split into `devices` equal rank slots (cores, memory and peaks divided
// evenly, so the peaks of all slots add up to the host's); the peaks are probed once at start
// (a STREAM-like triad and an fp32 GEMM) unless given.
#ifndef MOECAP_AGENT_DAEMON_INVENTORY_H_
#define MOECAP_AGENT_DAEMON_INVENTORY_H_

#include <map>

#include "absl/status/statusor.h"
#include "agent/compute/gpu_discovery.h"
#include "agent/daemon/agent_options.h"
#include "common/catalog.h"
#include "moecap/v1/agent.pb.h"

namespace moecap::agentd {

// Whether this moecap-agent was built with the GPU backend (CUDA, cuBLAS, NCCL).
bool CudaBackendBuiltIn();

// auto: the CUDA backend when one is built in and `gpus` lists a device, else the CPU backend
// (logging why: "no GPU: NVML not found ..."). cuda without the backend built in, or without a
// GPU, is refused (FailedPrecondition naming the reason).
absl::StatusOr<v1::Backend> ResolveBackend(BackendChoice choice, bool cuda_built_in,
                                           const GpuDiscovery& gpus);

// The host's peaks, whole host.
struct HostPeaks {
  double bandwidth_bytes_per_s = 0;
  double fp32_flops_per_s = 0;
  v1::PeakSource bandwidth_source = v1::PEAK_SOURCE_UNSPECIFIED;
  v1::PeakSource flops_source = v1::PEAK_SOURCE_UNSPECIFIED;
};

// Given peaks where the options have them, else probed (taking about a second).
absl::StatusOr<HostPeaks> MeasureHostPeaks(const InventoryOptions& options);

// The inventory of a CPU host split into options.devices slots with `peaks`. `catalog` names the
// slots' hardware id ("cpu" when the catalog has that entry).
absl::StatusOr<v1::HardwareInventory> CpuInventory(const InventoryOptions& options,
                                                   const HostPeaks& peaks, const Catalog& catalog);

// A GPU's peaks measured by the device probes (copy bandwidth, cuBLAS GEMMs); 0: not measured.
struct MeasuredGpuPeaks {
  double bandwidth_bytes_per_s = 0;
  double bf16_flops_per_s = 0;
  double fp32_flops_per_s = 0;
};

// The inventory of a GPU host: one device (rank slot) per GPU with its NVML name, memory, PCI bus
// id and the catalog's peaks (source CATALOG), or the operator's (GIVEN, options' peaks are per
// GPU here), or `measured` ones (MEASURED; filled by the caller's probes for a GPU the catalog
// does not know, keyed by GPU index; a GPU with neither keeps zeros). Host facts as CpuInventory.
absl::StatusOr<v1::HardwareInventory> GpuInventory(const InventoryOptions& options,
                                                   const GpuDiscovery& gpus,
                                                   const std::map<int, MeasuredGpuPeaks>& measured);

// Everything the agent registers with (name, hostname, data-plane address, backend, inventory,
// version, labels).
v1::AgentInfo MakeAgentInfo(const AgentOptions& options, v1::Backend backend,
                            v1::HardwareInventory inventory);

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_INVENTORY_H_
