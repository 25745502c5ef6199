// A stand-in libnvidia-ml for gpu_discovery_test: two GPUs, one the hardware catalog knows
// ("NVIDIA H100 80GB HBM3", 4 NVLinks up) and one it does not, so that the dlopen path, the
// struct layouts and the catalog lookup are exercised on hosts without a driver.
#include <cstring>

#include "agent/compute/nvml_abi.h"

namespace {

constexpr int kSuccess = 0;
constexpr int kInvalidArgument = 2;
constexpr int kUninitialized = 1;

struct FakeDevice {
  const char* name;
  const char* uuid;
  const char* bus_id;
  unsigned long long memory;
  unsigned sm_mhz, mem_mhz, power_mw, nvlinks;
};

const FakeDevice kDevices[] = {
    {"NVIDIA H100 80GB HBM3", "GPU-00000000-1111-2222-3333-444444444444", "00000000:18:00.0",
     85899345920ULL, 1980, 2619, 700000, 4},
    {"NVIDIA Mystery Accelerator", "GPU-55555555-6666-7777-8888-999999999999", "00000000:2A:00.0",
     25769803776ULL, 1500, 1000, 300000, 0},
};

bool initialized = false;  // the fake's own state, as NVML keeps one

// The opaque handle NVML hands out is, here, the address of a FakeDevice.
const FakeDevice* Get(nvmlDevice_t device) { return reinterpret_cast<const FakeDevice*>(device); }

void Copy(char* out, unsigned length, const char* text) {
  std::strncpy(out, text, length);
  out[length - 1] = '\0';
}

}  // namespace

extern "C" {

int nvmlInit_v2() {
  initialized = true;
  return kSuccess;
}
int nvmlShutdown() {
  initialized = false;
  return kSuccess;
}
const char* nvmlErrorString(int) { return "fake NVML error"; }
int nvmlSystemGetDriverVersion(char* out, unsigned length) {
  Copy(out, length, "999.99.99-fake");
  return kSuccess;
}
int nvmlDeviceGetCount_v2(unsigned* count) {
  if (!initialized) return kUninitialized;
  *count = 2;
  return kSuccess;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned index, nvmlDevice_t* device) {
  if (!initialized || index >= 2) return kInvalidArgument;
  *device = reinterpret_cast<nvmlDevice_t>(const_cast<FakeDevice*>(&kDevices[index]));
  return kSuccess;
}
int nvmlDeviceGetName(nvmlDevice_t device, char* out, unsigned length) {
  Copy(out, length, Get(device)->name);
  return kSuccess;
}
int nvmlDeviceGetUUID(nvmlDevice_t device, char* out, unsigned length) {
  Copy(out, length, Get(device)->uuid);
  return kSuccess;
}
int nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  memory->total = Get(device)->memory;
  memory->free = Get(device)->memory;
  memory->used = 0;
  return kSuccess;
}
int nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, int type, unsigned* mhz) {
  *mhz = type == 1 ? Get(device)->sm_mhz : Get(device)->mem_mhz;
  return kSuccess;
}
int nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned* milliwatts) {
  *milliwatts = Get(device)->power_mw;
  return kSuccess;
}
int nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  std::memset(pci, 0, sizeof(*pci));
  Copy(pci->busId, sizeof(pci->busId), Get(device)->bus_id);
  return kSuccess;
}
// The first GPU's counter advances 1500 mJ per read (a GPU drawing power between two reads); the
// second has none, as pre-Volta parts (NVML_ERROR_NOT_SUPPORTED).
int nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long* millijoules) {
  static unsigned long long counter = 123456789;
  if (Get(device) != &kDevices[0]) return 3;
  counter += 1500;
  *millijoules = counter;
  return kSuccess;
}
int nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned link, int* active) {
  if (link >= 18) return kInvalidArgument;
  *active = link < Get(device)->nvlinks ? 1 : 0;
  return kSuccess;
}

}  // extern "C"
