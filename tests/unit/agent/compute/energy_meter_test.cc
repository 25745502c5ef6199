// The energy counters against a fake powercap tree (packages, a subzone, a wrap-around) and the
// stand-in NVML (a GPU with a counter and one without), so they run on hosts with neither.
#include "agent/compute/energy_meter.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace moecap {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text << "\n";
}

fs::path FakePowercap() {
  const fs::path root = fs::path(::testing::TempDir()) / "moecap_powercap";
  fs::remove_all(root);
  Write(root / "intel-rapl:0" / "name", "package-0");
  Write(root / "intel-rapl:0" / "energy_uj", "1000000");
  Write(root / "intel-rapl:0" / "max_energy_range_uj", "262143328850");
  // A subzone (the cores of package 0): part of the package's figure, not added to it.
  Write(root / "intel-rapl:0:0" / "name", "core");
  Write(root / "intel-rapl:0:0" / "energy_uj", "500");
  Write(root / "intel-rapl:0:0" / "max_energy_range_uj", "262143328850");
  Write(root / "intel-rapl:1" / "name", "package-1");
  Write(root / "intel-rapl:1" / "energy_uj", "262142828850");  // 0.5 J before it wraps
  Write(root / "intel-rapl:1" / "max_energy_range_uj", "262143328850");
  Write(root / "intel-rapl-mmio:0" / "name", "package-0");  // another interface: not read
  return root;
}

TEST(RaplMeterTest, PackagesAreSummedAndAWrapAroundCarriedOver) {
  const fs::path root = FakePowercap();
  std::string why;
  std::unique_ptr<EnergyMeter> meter = OpenRaplMeter(root.string(), &why);
  ASSERT_NE(meter, nullptr) << why;
  EXPECT_EQ(meter->source(), "rapl: package-0, package-1");
  EXPECT_DOUBLE_EQ(*meter->Joules(), 0);
  // Package 0 draws 2.5 J; package 1 passes its range: 0.5 J to the wrap, then 1.0 J.
  Write(root / "intel-rapl:0" / "energy_uj", "3500000");
  Write(root / "intel-rapl:1" / "energy_uj", "1000000");
  Write(root / "intel-rapl:0:0" / "energy_uj", "99999999");
  EXPECT_DOUBLE_EQ(*meter->Joules(), 2.5 + 1.5);
  // A counter that can no longer be read says so.
  fs::remove(root / "intel-rapl:1" / "energy_uj");
  EXPECT_FALSE(meter->Joules().ok());
}

TEST(RaplMeterTest, NoPackageZoneNamesWhereItLooked) {
  const fs::path root = fs::path(::testing::TempDir()) / "moecap_no_powercap";
  fs::remove_all(root);
  fs::create_directories(root);
  std::string why;
  EXPECT_EQ(OpenRaplMeter(root.string(), &why), nullptr);
  EXPECT_NE(why.find("no RAPL package zone under " + root.string()), std::string::npos) << why;
  // A zone whose counter is not there (as a root-only file reads to an unprivileged agent).
  Write(root / "intel-rapl:0" / "name", "package-0");
  EXPECT_EQ(OpenRaplMeter(root.string(), &why), nullptr);
  EXPECT_NE(why.find("RAPL not readable"), std::string::npos) << why;
}

TEST(NvmlEnergyMeterTest, ReadsTheGpusCounterAndNamesAGpuWithout) {
  std::string why;
  std::unique_ptr<EnergyMeter> meter = OpenNvmlEnergyMeter(MOECAP_FAKE_NVML, 0, &why);
  ASSERT_NE(meter, nullptr) << why;
  EXPECT_EQ(meter->source(), "nvml: GPU 0");
  // The fake's counter advances 1.5 J per read; the first read after opening is 1.5 J in.
  EXPECT_DOUBLE_EQ(*meter->Joules(), 1.5);
  EXPECT_DOUBLE_EQ(*meter->Joules(), 3.0);
  meter.reset();
  EXPECT_EQ(OpenNvmlEnergyMeter(MOECAP_FAKE_NVML, 1, &why), nullptr);
  EXPECT_NE(why.find("GPU 1 reports no energy counter"), std::string::npos) << why;
  EXPECT_EQ(OpenNvmlEnergyMeter("/nonexistent/libnvidia-ml.so.1", 0, &why), nullptr);
  EXPECT_NE(why.find("NVML not found"), std::string::npos) << why;
}

}  // namespace
}  // namespace moecap
