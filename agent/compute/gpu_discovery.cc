// DiscoverGpus: NVML through dlopen, with the few NVML types and prototypes it needs declared
// here (no NVIDIA header at build time), and the catalog lookup of each device's peaks.
#include "agent/compute/gpu_discovery.h"

#include <dlfcn.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/compute/dynamic_library.h"
#include "agent/compute/nvml_abi.h"

namespace moecap {
namespace {

// NVML's types and constants: agent/compute/nvml_abi.h.
using NvmlReturn = int;                     // nvmlReturn_t
constexpr unsigned kNvmlStringBuffer = 96;  // >= NVML_DEVICE_NAME_V2_BUFFER_SIZE, UUID_V2 size
constexpr unsigned kNvmlDriverBuffer = 96;  // >= NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE (80)

struct Nvml {
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  const char* (*error_string)(NvmlReturn) = nullptr;
  NvmlReturn (*driver_version)(char*, unsigned) = nullptr;
  NvmlReturn (*device_count)(unsigned*) = nullptr;
  NvmlReturn (*handle_by_index)(unsigned, nvmlDevice_t*) = nullptr;
  NvmlReturn (*name)(nvmlDevice_t, char*, unsigned) = nullptr;
  NvmlReturn (*uuid)(nvmlDevice_t, char*, unsigned) = nullptr;
  NvmlReturn (*memory_info)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  // Optional: a device that lacks them is still listed.
  NvmlReturn (*max_clock)(nvmlDevice_t, int, unsigned*) = nullptr;
  NvmlReturn (*power_limit)(nvmlDevice_t, unsigned*) = nullptr;
  NvmlReturn (*pci_info)(nvmlDevice_t, nvmlPciInfo_t*) = nullptr;
  NvmlReturn (*nvlink_state)(nvmlDevice_t, unsigned, int*) = nullptr;

  std::string Error(NvmlReturn r) const {
    const char* text = error_string != nullptr ? error_string(r) : nullptr;
    return text != nullptr ? absl::StrCat(text, " (", r, ")") : absl::StrCat("NVML error ", r);
  }
};

std::string CString(const char* buffer, size_t size) {
  return std::string(buffer, strnlen(buffer, size));
}

}  // namespace

const HardwareSpec* MatchGpuHardware(const Catalog& catalog, absl::string_view device_name) {
  const auto gpu = [](absl::StatusOr<const HardwareSpec*> found) -> const HardwareSpec* {
    return found.ok() && (*found)->kind == DeviceKind::kGpu ? *found : nullptr;
  };
  if (const HardwareSpec* hw = gpu(catalog.FindHardware(device_name)); hw != nullptr) return hw;
  absl::string_view stripped = device_name;
  if (absl::ConsumePrefix(&stripped, "NVIDIA ") && !stripped.empty()) {
    if (const HardwareSpec* hw = gpu(catalog.FindHardware(stripped)); hw != nullptr) return hw;
  }
  const std::string normalized = NormalizeName(device_name);
  for (const HardwareSpec& hw : catalog.hardware()) {
    if (hw.kind == DeviceKind::kGpu && NormalizeName(hw.display_name) == normalized) return &hw;
  }
  return nullptr;
}

void FillPeaksFromCatalog(const Catalog& catalog, GpuInfo* gpu) {
  const HardwareSpec* hw = MatchGpuHardware(catalog, gpu->name);
  if (hw == nullptr) {
    gpu->hardware.clear();
    gpu->peak_bandwidth_bytes_s = 0;
    gpu->peak_flops.clear();
    gpu->tdp_watts = 0;
    gpu->peak_source = absl::StrCat("'", gpu->name,
                                    "' is not in the hardware catalog: the peaks must be measured "
                                    "(device copy bandwidth and GEMM probes)");
    return;
  }
  gpu->hardware = hw->name;
  gpu->peak_bandwidth_bytes_s = hw->peak_bandwidth_bytes_s;
  gpu->peak_flops = hw->peak_flops;
  gpu->tdp_watts = hw->tdp_watts;
  gpu->peak_source = absl::StrCat("hardware catalog (", hw->name, ")");
}

absl::StatusOr<GpuDiscovery> DiscoverGpus(const Catalog& catalog, absl::string_view library) {
  GpuDiscovery out;
  const std::string path(library);
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    out.reason = absl::StrCat("NVML not found (", path, "): no NVIDIA driver on this host");
    return out;
  }
  const DynamicLibrary lib(handle);
  Nvml nvml;
  for (const auto& [symbol, ok] :
       {std::pair<const char*, bool>{"nvmlInit_v2", lib.Get("nvmlInit_v2", &nvml.init)},
        {"nvmlShutdown", lib.Get("nvmlShutdown", &nvml.shutdown)},
        {"nvmlDeviceGetCount_v2", lib.Get("nvmlDeviceGetCount_v2", &nvml.device_count)},
        {"nvmlDeviceGetHandleByIndex_v2",
         lib.Get("nvmlDeviceGetHandleByIndex_v2", &nvml.handle_by_index)},
        {"nvmlDeviceGetName", lib.Get("nvmlDeviceGetName", &nvml.name)},
        {"nvmlDeviceGetUUID", lib.Get("nvmlDeviceGetUUID", &nvml.uuid)},
        {"nvmlDeviceGetMemoryInfo", lib.Get("nvmlDeviceGetMemoryInfo", &nvml.memory_info)}}) {
    if (!ok) {
      out.reason = absl::StrCat("NVML at ", path, " lacks ", symbol,
                                " (a driver too old for this moecap?): GPUs not listed");
      return out;
    }
  }
  lib.Get("nvmlErrorString", &nvml.error_string);
  lib.Get("nvmlSystemGetDriverVersion", &nvml.driver_version);
  lib.Get("nvmlDeviceGetMaxClockInfo", &nvml.max_clock);
  lib.Get("nvmlDeviceGetPowerManagementLimit", &nvml.power_limit);
  lib.Get("nvmlDeviceGetPciInfo_v3", &nvml.pci_info);
  lib.Get("nvmlDeviceGetNvLinkState", &nvml.nvlink_state);

  if (NvmlReturn r = nvml.init(); r != kNvmlSuccess) {
    out.reason = absl::StrCat("NVML (", path, ") did not initialise: ", nvml.Error(r),
                              "; no usable NVIDIA driver or GPU");
    return out;
  }
  // nvmlShutdown on every way out from here.
  struct Shutdown {
    const Nvml& nvml;
    ~Shutdown() { nvml.shutdown(); }
  } shutdown{nvml};

  if (nvml.driver_version != nullptr) {
    char version[kNvmlDriverBuffer] = {};
    if (nvml.driver_version(version, sizeof(version)) == kNvmlSuccess) {
      out.driver_version = CString(version, sizeof(version));
    }
  }
  unsigned count = 0;
  if (NvmlReturn r = nvml.device_count(&count); r != kNvmlSuccess) {
    return absl::UnavailableError(
        absl::StrCat("NVML: nvmlDeviceGetCount_v2 failed: ", nvml.Error(r)));
  }
  for (unsigned i = 0; i < count; ++i) {
    nvmlDevice_t device = nullptr;
    if (NvmlReturn r = nvml.handle_by_index(i, &device); r != kNvmlSuccess) {
      return absl::UnavailableError(
          absl::StrCat("NVML: no handle for GPU ", i, ": ", nvml.Error(r)));
    }
    GpuInfo gpu;
    gpu.index = static_cast<int>(i);
    char text[kNvmlStringBuffer] = {};
    if (NvmlReturn r = nvml.name(device, text, sizeof(text)); r != kNvmlSuccess) {
      return absl::UnavailableError(absl::StrCat("NVML: no name for GPU ", i, ": ", nvml.Error(r)));
    }
    gpu.name = CString(text, sizeof(text));
    std::memset(text, 0, sizeof(text));
    if (nvml.uuid(device, text, sizeof(text)) == kNvmlSuccess) {
      gpu.uuid = CString(text, sizeof(text));
    }
    nvmlMemory_t memory{};
    if (NvmlReturn r = nvml.memory_info(device, &memory); r != kNvmlSuccess) {
      return absl::UnavailableError(
          absl::StrCat("NVML: no memory size for GPU ", i, " (", gpu.name, "): ", nvml.Error(r)));
    }
    gpu.memory_bytes = static_cast<int64_t>(memory.total);
    unsigned value = 0;
    if (nvml.max_clock != nullptr && nvml.max_clock(device, kNvmlClockSm, &value) == kNvmlSuccess) {
      gpu.max_sm_clock_mhz = static_cast<int>(value);
    }
    if (nvml.max_clock != nullptr &&
        nvml.max_clock(device, kNvmlClockMem, &value) == kNvmlSuccess) {
      gpu.max_memory_clock_mhz = static_cast<int>(value);
    }
    if (nvml.power_limit != nullptr && nvml.power_limit(device, &value) == kNvmlSuccess) {
      gpu.power_limit_watts = value / 1000.0;  // NVML reports milliwatts
    }
    if (nvml.pci_info != nullptr) {
      struct {
        nvmlPciInfo_t info;
        char slack[64];  // room should a driver's struct be longer than the one declared here
      } pci{};
      if (nvml.pci_info(device, &pci.info) == kNvmlSuccess) {
        gpu.pci_bus_id = CString(pci.info.busId, sizeof(pci.info.busId));
      }
    }
    if (nvml.nvlink_state != nullptr) {
      for (unsigned link = 0; link < kNvmlMaxNvLinks; ++link) {
        int state = 0;
        // Links past the device's count answer an error: they are simply not there.
        if (nvml.nvlink_state(device, link, &state) == kNvmlSuccess &&
            state == kNvmlFeatureEnabled) {
          ++gpu.nvlinks_active;
        }
      }
    }
    FillPeaksFromCatalog(catalog, &gpu);
    out.gpus.push_back(std::move(gpu));
  }
  if (out.gpus.empty()) {
    out.reason = absl::StrCat("NVML (driver ", out.driver_version, ") reports no GPU");
  }
  return out;
}

}  // namespace moecap
