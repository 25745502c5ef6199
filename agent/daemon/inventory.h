// What this host offers the coordinator: the backend it runs, its devices with their peaks (the
// S-MBU/S-MFU denominators) and the host's facts, as the AgentInfo it registers with. On the CPU
// backend the host is split into `devices` equal rank slots (cores, memory and peaks divided
// evenly, so the peaks of all slots add up to the host's); the peaks are probed once at start
// (a STREAM-like triad and an fp32 GEMM) unless given.
#ifndef MOECAP_AGENT_DAEMON_INVENTORY_H_
#define MOECAP_AGENT_DAEMON_INVENTORY_H_

#include "absl/status/statusor.h"
#include "agent/daemon/agent_options.h"
#include "common/catalog.h"
#include "moecap/v1/agent.pb.h"

namespace moecap::agentd {

// auto: the CUDA backend when one is built in and a device exists, else the CPU backend. This
// build has no GPU backend (issue 6), so cuda is refused (FailedPrecondition) and auto is cpu.
absl::StatusOr<v1::Backend> ResolveBackend(BackendChoice choice);

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

// Everything the agent registers with (name, hostname, data-plane address, backend, inventory,
// version, labels).
v1::AgentInfo MakeAgentInfo(const AgentOptions& options, v1::Backend backend,
                            v1::HardwareInventory inventory);

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_INVENTORY_H_
