// GPU discovery: no driver (the real library name on a host without one, a bogus path), a fake
// NVML with two GPUs (the dlopen path and struct layouts), and NVML names matched to the catalog.
#include "agent/compute/gpu_discovery.h"

#include <dlfcn.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace moecap {
namespace {

using ::testing::HasSubstr;

Catalog Builtin() {
  absl::StatusOr<Catalog> catalog = Catalog::Builtin();
  EXPECT_TRUE(catalog.ok()) << catalog.status();
  return catalog.ok() ? *std::move(catalog) : Catalog();
}

TEST(GpuDiscoveryTest, WithoutADriverFindsNoGpuAndSaysWhy) {
  void* nvml = dlopen(kNvmlLibrary, RTLD_NOW | RTLD_LOCAL);
  if (nvml != nullptr) {
    dlclose(nvml);
    GTEST_SKIP() << kNvmlLibrary << " is installed on this host";
  }
  absl::StatusOr<GpuDiscovery> found = DiscoverGpus(Builtin());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(found->gpus.empty());
  EXPECT_EQ(found->reason, "NVML not found (libnvidia-ml.so.1): no NVIDIA driver on this host");
}

TEST(GpuDiscoveryTest, ABogusLibraryPathFindsNoGpu) {
  absl::StatusOr<GpuDiscovery> found = DiscoverGpus(Builtin(), "/nonexistent/libnvidia-ml.so.1");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(found->gpus.empty());
  EXPECT_THAT(found->reason, HasSubstr("NVML not found (/nonexistent/libnvidia-ml.so.1)"));
}

TEST(GpuDiscoveryTest, ListsTheFakeNvmlsGpusWithCatalogPeaks) {
  absl::StatusOr<GpuDiscovery> found = DiscoverGpus(Builtin(), MOECAP_FAKE_NVML);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->gpus.size(), 2u) << found->reason;
  EXPECT_TRUE(found->reason.empty());
  EXPECT_EQ(found->driver_version, "999.99.99-fake");

  const GpuInfo& h100 = found->gpus[0];
  EXPECT_EQ(h100.index, 0);
  EXPECT_EQ(h100.name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(h100.uuid, "GPU-00000000-1111-2222-3333-444444444444");
  EXPECT_EQ(h100.pci_bus_id, "00000000:18:00.0");
  EXPECT_EQ(h100.memory_bytes, 85899345920);  // 80 GiB
  EXPECT_EQ(h100.max_sm_clock_mhz, 1980);
  EXPECT_EQ(h100.max_memory_clock_mhz, 2619);
  EXPECT_DOUBLE_EQ(h100.power_limit_watts, 700.0);  // 700000 mW
  EXPECT_EQ(h100.nvlinks_active, 4);
  EXPECT_EQ(h100.hardware, "h100-sxm");
  EXPECT_DOUBLE_EQ(h100.peak_bandwidth_bytes_s, 3350e9);         // 3350 GB/s in the catalog
  EXPECT_DOUBLE_EQ(h100.peak_flops.at(Dtype::kBf16), 989.5e12);  // dense bf16
  EXPECT_THAT(h100.peak_source, HasSubstr("hardware catalog (h100-sxm)"));

  const GpuInfo& unknown = found->gpus[1];
  EXPECT_EQ(unknown.name, "NVIDIA Mystery Accelerator");
  EXPECT_EQ(unknown.nvlinks_active, 0);
  EXPECT_TRUE(unknown.hardware.empty());
  EXPECT_EQ(unknown.peak_bandwidth_bytes_s, 0);
  EXPECT_TRUE(unknown.peak_flops.empty());
  EXPECT_THAT(unknown.peak_source, HasSubstr("must be measured"));
}

TEST(GpuDiscoveryTest, MatchesNvmlNamesToTheCatalog) {
  const Catalog catalog = Builtin();
  const HardwareSpec* h100 = MatchGpuHardware(catalog, "NVIDIA H100 80GB HBM3");
  ASSERT_NE(h100, nullptr);
  EXPECT_EQ(h100->name, "h100-sxm");
  const HardwareSpec* h200 = MatchGpuHardware(catalog, "NVIDIA H200");
  ASSERT_NE(h200, nullptr);
  EXPECT_EQ(h200->name, "h200");
  const HardwareSpec* pcie = MatchGpuHardware(catalog, "NVIDIA H100 PCIe");
  ASSERT_NE(pcie, nullptr);
  EXPECT_EQ(pcie->name, "h100-pcie");
  // By display name, and "NVIDIA " stripped down to a catalog id.
  EXPECT_NE(MatchGpuHardware(catalog, "NVIDIA H200 SXM 141GB"), nullptr);
  EXPECT_NE(MatchGpuHardware(catalog, "NVIDIA h200-sxm"), nullptr);
  EXPECT_EQ(MatchGpuHardware(catalog, "NVIDIA Mystery Accelerator"), nullptr);
  // CPU entries never match a GPU name.
  EXPECT_EQ(MatchGpuHardware(catalog, "cpu"), nullptr);
}

}  // namespace
}  // namespace moecap
