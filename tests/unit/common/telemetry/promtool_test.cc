// Runs the real `promtool check metrics` (Debian's prometheus package) on the exposition of a
// registry holding every metric kind and every metric moecap declares: promtool parses the text
// and lints the names (counters end in _total, base units, no reserved labels), so a passing run
// means Prometheus accepts what the coordinator and agents serve.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/telemetry/registry.h"
#include "gtest/gtest.h"
#include "tests/e2e/example_metrics.h"

namespace moecap::telemetry {
namespace {

#ifndef MOECAP_PROMTOOL
#define MOECAP_PROMTOOL "/usr/bin/promtool"
#endif

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunCommand(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// promtool's verdict on `exposition` (exit code and its complaints).
CommandResult CheckMetrics(const std::string& exposition) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/moecap_promtool_", getpid(), ".prom");
  std::ofstream(path) << exposition;
  CommandResult result = RunCommand(absl::StrCat(MOECAP_PROMTOOL, " check metrics < ", path));
  std::remove(path.c_str());
  return result;
}

class PromtoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(MOECAP_PROMTOOL, X_OK) != 0) {
      GTEST_SKIP() << MOECAP_PROMTOOL
                   << " not found: install Debian's prometheus package (scripts/setup.sh)";
    }
  }
};

TEST_F(PromtoolTest, AcceptsEveryMetricKindWithEscapedLabels) {
  Registry registry;
  (*(*registry.AddCounter("moecap_test_requests_total", "Requests \\ handled\nper method.",
                          {"method"}))
        ->WithLabels({"Sub\"mit\\\n"}))
      ->Increment(3);
  (*(*registry.AddGauge("moecap_test_queue_depth", "Jobs waiting."))->WithLabels({}))->Set(-2.5);
  HistogramFamily* steps =
      *registry.AddHistogram("moecap_test_step_seconds", "Step time.", {"phase"}, {0.001, 0.5});
  (*steps->WithLabels({"decode"}))->Observe(0.25);
  (*steps->WithLabels({"prefill"}))->Observe(1e-9);
  SummaryFamily* summary =
      *registry.AddSummary("moecap_test_result_seconds", "Result.", {"job_id"}, {0.5, 0.99});
  ASSERT_TRUE((*summary->WithLabels({"caf\xc3\xa9"}))->Set({0.125, 0.25}, 10, 64).ok());
  (*(*registry.AddGauge("moecap_test_special", "Special values.", {"v"}))->WithLabels({"inf"}))
      ->Set(std::numeric_limits<double>::infinity());

  const CommandResult result = CheckMetrics(registry.Render());
  EXPECT_EQ(result.exit_code, 0) << result.output << "\n--- exposition ---\n" << registry.Render();
  EXPECT_EQ(result.output, "");
}

TEST_F(PromtoolTest, AcceptsEveryDeclaredMoecapMetric) {
  Registry registry;
  ASSERT_TRUE(testing::PopulateExampleMetrics(registry).ok());
  const std::string exposition = registry.Render();
  const CommandResult result = CheckMetrics(exposition);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "") << "promtool lint complaints:\n" << result.output;
}

TEST_F(PromtoolTest, CatchesALintProblemSoThePassesAboveMeanSomething) {
  Registry registry;
  // A counter without the _total suffix: valid syntax, but promtool's linter objects.
  (*(*registry.AddCounter("moecap_test_requests", "Requests."))->WithLabels({}))->Increment();
  const CommandResult result = CheckMetrics(registry.Render());
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("_total"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace moecap::telemetry
