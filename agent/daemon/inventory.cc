// Inventory: backend choice, host peaks (given or probed), CPU rank slots.
#include "agent/daemon/inventory.h"

#include <sys/utsname.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/compute/cpu_backend.h"
#include "agent/compute/host_probe.h"
#include "spdlog/spdlog.h"

namespace moecap::agentd {

absl::StatusOr<v1::Backend> ResolveBackend(BackendChoice choice) {
  switch (choice) {
    case BackendChoice::kCpu:
      return v1::BACKEND_CPU;
    case BackendChoice::kCuda:
      return absl::FailedPreconditionError(
          "--backend cuda: this moecap-agent has no GPU backend built in (the CUDA/NCCL backend "
          "is a later issue); use --backend cpu or auto");
    case BackendChoice::kAuto:
      spdlog::info("--backend auto: no GPU backend is built into this moecap-agent; using cpu");
      return v1::BACKEND_CPU;
  }
  return absl::InvalidArgumentError("--backend: unknown choice");
}

absl::StatusOr<HostPeaks> MeasureHostPeaks(const InventoryOptions& options) {
  HostPeaks peaks;
  if (options.peak_bandwidth_gb_s < 0 || options.peak_gflops < 0) {
    return absl::InvalidArgumentError("--peak-bandwidth-gb-s and --peak-gflops must be >= 0");
  }
  if (options.peak_bandwidth_gb_s > 0) {
    peaks.bandwidth_bytes_per_s = options.peak_bandwidth_gb_s * 1e9;
    peaks.bandwidth_source = v1::PEAK_SOURCE_GIVEN;
  } else {
    BandwidthProbeOptions probe;
    probe.array_bytes = options.probe_array_bytes;
    probe.repetitions = 3;
    absl::StatusOr<double> bandwidth = ProbeMemoryBandwidth(probe);
    if (!bandwidth.ok()) return bandwidth.status();
    peaks.bandwidth_bytes_per_s = *bandwidth;
    peaks.bandwidth_source = v1::PEAK_SOURCE_MEASURED;
  }
  if (options.peak_gflops > 0) {
    peaks.fp32_flops_per_s = options.peak_gflops * 1e9;
    peaks.flops_source = v1::PEAK_SOURCE_GIVEN;
  } else {
    CpuBackend backend(GetHostInfo().cores);
    GemmProbeOptions probe;
    probe.size = options.probe_gemm_size;
    probe.repetitions = 2;
    absl::StatusOr<double> flops = ProbeGemmFlops(backend, Dtype::kFp32, probe);
    if (!flops.ok()) return flops.status();
    peaks.fp32_flops_per_s = *flops;
    peaks.flops_source = v1::PEAK_SOURCE_MEASURED;
  }
  return peaks;
}

absl::StatusOr<v1::HardwareInventory> CpuInventory(const InventoryOptions& options,
                                                   const HostPeaks& peaks, const Catalog& catalog) {
  if (options.devices < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--devices must be >= 1, got ", options.devices));
  }
  const HostInfo host = GetHostInfo();
  const std::string hardware = catalog.FindHardware("cpu").ok() ? "cpu" : "";
  const double slots = static_cast<double>(options.devices);
  v1::HardwareInventory inventory;
  inventory.set_cpu_cores(host.cores);
  inventory.set_host_memory_bytes(
      static_cast<uint64_t>(std::max<int64_t>(0, host.memory_total_bytes)));
  inventory.set_cpu_model(host.cpu_model);
  utsname uts{};
  if (uname(&uts) == 0) inventory.set_os(absl::StrCat(uts.sysname, " ", uts.release));
  for (int i = 0; i < options.devices; ++i) {
    v1::Device* device = inventory.add_devices();
    device->set_index(i);
    device->set_kind(v1::DEVICE_KIND_CPU);
    device->set_name(host.cpu_model.empty() ? "cpu" : host.cpu_model);
    device->set_hardware(hardware);
    device->set_memory_bytes(inventory.host_memory_bytes() /
                             static_cast<uint64_t>(options.devices));
    device->set_peak_bandwidth_bytes_per_s(peaks.bandwidth_bytes_per_s / slots);
    device->set_bandwidth_source(peaks.bandwidth_source);
    v1::DtypeFlops* fp32 = device->add_peak_flops();
    fp32->set_dtype(v1::DTYPE_FP32);
    fp32->set_flops_per_s(peaks.fp32_flops_per_s / slots);
    fp32->set_source(peaks.flops_source);
    device->set_cores(std::max(1, host.cores / options.devices));
  }
  return inventory;
}

v1::AgentInfo MakeAgentInfo(const AgentOptions& options, v1::Backend backend,
                            v1::HardwareInventory inventory) {
  v1::AgentInfo info;
  const HostInfo host = GetHostInfo();
  info.set_name(options.name.empty() ? host.hostname : options.name);
  info.set_hostname(host.hostname);
  info.set_data_plane_host(options.data_address);
  info.set_backend(backend);
  *info.mutable_inventory() = std::move(inventory);
  info.set_version(options.version);
  for (const auto& [key, value] : options.labels) (*info.mutable_labels())[key] = value;
  return info;
}

}  // namespace moecap::agentd
