// Inventory: backend choice, host peaks (given or probed), CPU rank slots.
#include "agent/daemon/inventory.h"

#include <sys/utsname.h>

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/compute/cpu_backend.h"
#include "agent/compute/host_probe.h"
#include "spdlog/spdlog.h"

namespace moecap::agentd {

bool CudaBackendBuiltIn() {
#ifdef MOECAP_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

absl::StatusOr<v1::Backend> ResolveBackend(BackendChoice choice, bool cuda_built_in,
                                           const GpuDiscovery& gpus) {
  const std::string no_gpu =
      gpus.gpus.empty() ? absl::StrCat("no GPU: ", gpus.reason.empty() ? "none found" : gpus.reason)
                        : "";
  switch (choice) {
    case BackendChoice::kCpu:
      return v1::BACKEND_CPU;
    case BackendChoice::kCuda:
      if (!cuda_built_in) {
        return absl::FailedPreconditionError(
            "--backend cuda: this moecap-agent was built without the GPU backend (CMake found "
            "no CUDA toolkit and NCCL, or MOECAP_CUDA=OFF); use --backend cpu or auto");
      }
      if (!no_gpu.empty()) {
        return absl::FailedPreconditionError(absl::StrCat("--backend cuda: ", no_gpu));
      }
      return v1::BACKEND_CUDA;
    case BackendChoice::kAuto:
      if (!cuda_built_in) {
        spdlog::info("--backend auto: no GPU backend is built into this moecap-agent; using cpu");
        return v1::BACKEND_CPU;
      }
      if (!no_gpu.empty()) {
        spdlog::info("--backend auto: {}; using cpu", no_gpu);
        return v1::BACKEND_CPU;
      }
      spdlog::info("--backend auto: {} GPU(s) found (driver {}); using cuda", gpus.gpus.size(),
                   gpus.driver_version);
      return v1::BACKEND_CUDA;
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

absl::StatusOr<v1::HardwareInventory> GpuInventory(
    const InventoryOptions& options, const GpuDiscovery& gpus,
    const std::map<int, MeasuredGpuPeaks>& measured) {
  if (gpus.gpus.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("GPU inventory: ", gpus.reason));
  }
  if (options.peak_bandwidth_gb_s < 0 || options.peak_gflops < 0) {
    return absl::InvalidArgumentError("--peak-bandwidth-gb-s and --peak-gflops must be >= 0");
  }
  const HostInfo host = GetHostInfo();
  v1::HardwareInventory inventory;
  inventory.set_cpu_cores(host.cores);
  inventory.set_host_memory_bytes(
      static_cast<uint64_t>(std::max<int64_t>(0, host.memory_total_bytes)));
  inventory.set_cpu_model(host.cpu_model);
  utsname uts{};
  if (uname(&uts) == 0) inventory.set_os(absl::StrCat(uts.sysname, " ", uts.release));
  inventory.set_driver_version(gpus.driver_version);
  const std::map<Dtype, v1::Dtype> dtypes = {{Dtype::kFp32, v1::DTYPE_FP32},
                                             {Dtype::kBf16, v1::DTYPE_BF16},
                                             {Dtype::kFp16, v1::DTYPE_FP16},
                                             {Dtype::kFp8, v1::DTYPE_FP8}};
  for (const GpuInfo& gpu : gpus.gpus) {
    v1::Device* device = inventory.add_devices();
    device->set_index(gpu.index);
    device->set_kind(v1::DEVICE_KIND_GPU);
    device->set_name(gpu.name);
    device->set_hardware(gpu.hardware);
    device->set_uuid(gpu.uuid);
    device->set_pci_bus_id(gpu.pci_bus_id);
    device->set_memory_bytes(static_cast<uint64_t>(std::max<int64_t>(0, gpu.memory_bytes)));
    device->set_tdp_watts(gpu.tdp_watts > 0 ? gpu.tdp_watts : gpu.power_limit_watts);
    device->set_cores(0);
    const auto it = measured.find(gpu.index);
    const MeasuredGpuPeaks probe = it != measured.end() ? it->second : MeasuredGpuPeaks{};
    if (options.peak_bandwidth_gb_s > 0) {
      device->set_peak_bandwidth_bytes_per_s(options.peak_bandwidth_gb_s * 1e9);
      device->set_bandwidth_source(v1::PEAK_SOURCE_GIVEN);
    } else if (gpu.peak_bandwidth_bytes_s > 0) {
      device->set_peak_bandwidth_bytes_per_s(gpu.peak_bandwidth_bytes_s);
      device->set_bandwidth_source(v1::PEAK_SOURCE_CATALOG);
    } else if (probe.bandwidth_bytes_per_s > 0) {
      device->set_peak_bandwidth_bytes_per_s(probe.bandwidth_bytes_per_s);
      device->set_bandwidth_source(v1::PEAK_SOURCE_MEASURED);
    }
    // --peak-gflops is an fp32 figure; the catalog has a dense peak per dtype.
    std::map<Dtype, std::pair<double, v1::PeakSource>> flops;
    for (const auto& [dtype, value] : gpu.peak_flops) {
      flops[dtype] = {value, v1::PEAK_SOURCE_CATALOG};
    }
    if (flops.count(Dtype::kBf16) == 0 && probe.bf16_flops_per_s > 0) {
      flops[Dtype::kBf16] = {probe.bf16_flops_per_s, v1::PEAK_SOURCE_MEASURED};
    }
    if (flops.count(Dtype::kFp32) == 0 && probe.fp32_flops_per_s > 0) {
      flops[Dtype::kFp32] = {probe.fp32_flops_per_s, v1::PEAK_SOURCE_MEASURED};
    }
    if (options.peak_gflops > 0)
      flops[Dtype::kFp32] = {options.peak_gflops * 1e9, v1::PEAK_SOURCE_GIVEN};
    for (const auto& [dtype, figure] : flops) {
      v1::DtypeFlops* entry = device->add_peak_flops();
      entry->set_dtype(dtypes.at(dtype));
      entry->set_flops_per_s(figure.first);
      entry->set_source(figure.second);
    }
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
