// Not a test: how long a plan takes from YAML text to a moecap.v1.Plan message (ParsePlanYaml),
// the part of a SubmitPlan that costs most (docs/load.md). Google Benchmark over the load tool's
// plan and every example plan:
//   build/release/common/plan/plan_parse_bench [--benchmark_filter=Load]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/plan/plan.h"

namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void BM_ParsePlanYaml(benchmark::State& state, const std::string& yaml, const std::string& name) {
  for (auto _ : state) {
    absl::StatusOr<moecap::v1::Plan> plan = moecap::ParsePlanYaml(yaml, name);
    if (!plan.ok()) {
      state.SkipWithError(std::string(plan.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(plan);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(yaml.size()));
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path source = MOECAP_SOURCE_DIR;
  std::vector<std::filesystem::path> plans = {source / "tests/load/load_plan.yaml"};
  for (const auto& entry : std::filesystem::directory_iterator(source / "examples/plans")) {
    if (entry.path().extension() == ".yaml") plans.push_back(entry.path());
  }
  std::sort(plans.begin() + 1, plans.end());
  for (const std::filesystem::path& path : plans) {
    const std::string name = path.filename().string();
    benchmark::RegisterBenchmark(("ParsePlanYaml/" + name).c_str(), BM_ParsePlanYaml,
                                 ReadFile(path), name);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
