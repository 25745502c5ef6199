// NVML's C ABI, the part moecap calls through dlopen (no NVIDIA header at build time): constants,
// and the types under the names nvml.h gives them, at global scope as its C declarations put them.
// The names matter beyond readability: a function pointer moecap calls must have the type of the
// function it points at, and UBSan (clang's -fsanitize=function) checks exactly that against the
// stand-in library of the tests (tests/fakes/fake_nvml.cc), which includes this header too.
// Enums (nvmlReturn_t, nvmlClockType_t, nvmlEnableState_t) are int-sized and passed as int.
#ifndef MOECAP_AGENT_COMPUTE_NVML_ABI_H_
#define MOECAP_AGENT_COMPUTE_NVML_ABI_H_

extern "C" {

struct nvmlDevice_st;  // opaque
typedef struct nvmlDevice_st* nvmlDevice_t;

typedef struct nvmlMemory_st {  // v1
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;

typedef struct nvmlPciInfo_st {  // as nvmlDeviceGetPciInfo_v3 fills it
  char busIdLegacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;

}  // extern "C"

namespace moecap {

// Values and layouts are stable across driver versions.
inline constexpr int kNvmlSuccess = 0;           // NVML_SUCCESS
inline constexpr int kNvmlClockSm = 1;           // NVML_CLOCK_SM
inline constexpr int kNvmlClockMem = 2;          // NVML_CLOCK_MEM
inline constexpr int kNvmlFeatureEnabled = 1;    // NVML_FEATURE_ENABLED
inline constexpr unsigned kNvmlMaxNvLinks = 18;  // NVML_NVLINK_MAX_LINKS

}  // namespace moecap

#endif  // MOECAP_AGENT_COMPUTE_NVML_ABI_H_
