// RAPL through sysfs files, NVML through dlopen (the prototypes it needs declared here, as
// gpu_discovery does).
#include "agent/compute/energy_meter.h"

#include <dlfcn.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "agent/compute/dynamic_library.h"
#include "agent/compute/nvml_abi.h"

namespace moecap {
namespace {

bool ReadUint64(const std::filesystem::path& path, uint64_t* out) {
  std::ifstream in(path);
  std::string text;
  if (!in || !std::getline(in, text)) return false;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), out);
}

class RaplMeter : public EnergyMeter {
 public:
  struct Zone {
    std::filesystem::path energy_file;
    std::string name;        // "package-0"
    uint64_t max_range = 0;  // max_energy_range_uj: where energy_uj wraps to 0
    uint64_t last = 0;       // the last reading
  };

  explicit RaplMeter(std::vector<Zone> zones) : zones_(std::move(zones)) {
    std::vector<std::string> names;
    for (const Zone& z : zones_) names.push_back(z.name);
    source_ = absl::StrCat("rapl: ", absl::StrJoin(names, ", "));
  }

  absl::StatusOr<double> Joules() override {
    for (Zone& z : zones_) {
      uint64_t now = 0;
      if (!ReadUint64(z.energy_file, &now)) {
        return absl::UnavailableError(
            absl::StrCat("cannot read ", z.energy_file.string(), " any more"));
      }
      // A counter that passed max_energy_range_uj started again from 0.
      const uint64_t delta = now >= z.last ? now - z.last : now + (z.max_range - z.last);
      total_uj_ += static_cast<double>(delta);
      z.last = now;
    }
    return total_uj_ / 1e6;
  }

  const std::string& source() const override { return source_; }

 private:
  std::vector<Zone> zones_;
  double total_uj_ = 0;
  std::string source_;
};

// NVML's ABI (agent/compute/nvml_abi.h): the few entry points the counter needs.
using NvmlReturn = int;  // nvmlReturn_t

class NvmlEnergyMeter : public EnergyMeter {
 public:
  struct Api {
    NvmlReturn (*init)() = nullptr;
    NvmlReturn (*shutdown)() = nullptr;
    NvmlReturn (*handle_by_index)(unsigned, nvmlDevice_t*) = nullptr;
    NvmlReturn (*total_energy)(nvmlDevice_t, unsigned long long*) = nullptr;
  };

  NvmlEnergyMeter(std::unique_ptr<DynamicLibrary> library, Api api, nvmlDevice_t device,
                  unsigned long long start_mj, int index)
      : library_(std::move(library)),
        api_(api),
        device_(device),
        start_mj_(start_mj),
        source_(absl::StrCat("nvml: GPU ", index)) {}
  ~NvmlEnergyMeter() override { api_.shutdown(); }

  absl::StatusOr<double> Joules() override {
    unsigned long long mj = 0;
    if (NvmlReturn r = api_.total_energy(device_, &mj); r != kNvmlSuccess) {
      return absl::UnavailableError(
          absl::StrCat("nvmlDeviceGetTotalEnergyConsumption failed (NVML error ", r, ")"));
    }
    return static_cast<double>(mj - std::min(mj, start_mj_)) / 1e3;
  }

  const std::string& source() const override { return source_; }

 private:
  std::unique_ptr<DynamicLibrary> library_;
  Api api_;
  nvmlDevice_t device_;
  unsigned long long start_mj_;
  std::string source_;
};

}  // namespace

std::unique_ptr<EnergyMeter> OpenRaplMeter(const std::string& powercap_root, std::string* why) {
  std::error_code ec;
  std::vector<RaplMeter::Zone> zones;
  std::vector<std::string> unreadable;
  for (const auto& entry : std::filesystem::directory_iterator(powercap_root, ec)) {
    const std::string dir = entry.path().filename().string();
    // intel-rapl:0 is a package; intel-rapl:0:1 a subzone of it.
    if (!absl::StartsWith(dir, "intel-rapl:") || std::count(dir.begin(), dir.end(), ':') != 1) {
      continue;
    }
    RaplMeter::Zone z;
    z.energy_file = entry.path() / "energy_uj";
    std::ifstream name_in(entry.path() / "name");
    if (!name_in || !std::getline(name_in, z.name)) z.name = dir;
    if (!ReadUint64(z.energy_file, &z.last) ||
        !ReadUint64(entry.path() / "max_energy_range_uj", &z.max_range)) {
      unreadable.push_back(z.energy_file.string());
      continue;
    }
    zones.push_back(std::move(z));
  }
  if (zones.empty()) {
    *why = unreadable.empty()
               ? absl::StrCat("no RAPL package zone under ", powercap_root,
                              " (not exposed by this CPU, kernel or virtual machine)")
               : absl::StrCat("RAPL not readable: ", absl::StrJoin(unreadable, ", "),
                              " (root-only; `chmod a+r` them, or run the agent as root)");
    return nullptr;
  }
  std::sort(zones.begin(), zones.end(),
            [](const RaplMeter::Zone& a, const RaplMeter::Zone& b) { return a.name < b.name; });
  return std::make_unique<RaplMeter>(std::move(zones));
}

std::unique_ptr<EnergyMeter> OpenNvmlEnergyMeter(const std::string& library, int device_index,
                                                 std::string* why) {
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    *why = absl::StrCat("NVML not found (", library, ")");
    return nullptr;
  }
  auto lib = std::make_unique<DynamicLibrary>(handle);
  NvmlEnergyMeter::Api api;
  if (!lib->Get("nvmlInit_v2", &api.init) || !lib->Get("nvmlShutdown", &api.shutdown) ||
      !lib->Get("nvmlDeviceGetHandleByIndex_v2", &api.handle_by_index)) {
    *why = absl::StrCat(library, " lacks the NVML entry points");
    return nullptr;
  }
  if (!lib->Get("nvmlDeviceGetTotalEnergyConsumption", &api.total_energy)) {
    *why = absl::StrCat(library, " has no nvmlDeviceGetTotalEnergyConsumption (driver too old)");
    return nullptr;
  }
  if (NvmlReturn r = api.init(); r != kNvmlSuccess) {
    *why = absl::StrCat("NVML did not initialise (error ", r, ")");
    return nullptr;
  }
  nvmlDevice_t device = nullptr;
  unsigned long long start = 0;
  if (NvmlReturn r = api.handle_by_index(static_cast<unsigned>(device_index), &device);
      r != kNvmlSuccess) {
    api.shutdown();
    *why = absl::StrCat("NVML has no GPU ", device_index, " (error ", r, ")");
    return nullptr;
  }
  if (NvmlReturn r = api.total_energy(device, &start); r != kNvmlSuccess) {
    api.shutdown();
    *why = absl::StrCat("GPU ", device_index,
                        " reports no energy counter (nvmlDeviceGetTotalEnergyConsumption error ", r,
                        "; pre-Volta parts have none)");
    return nullptr;
  }
  return std::make_unique<NvmlEnergyMeter>(std::move(lib), api, device, start, device_index);
}

}  // namespace moecap
