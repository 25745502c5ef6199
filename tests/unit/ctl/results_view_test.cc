// The accuracy `results` shows beside a job's points (ctl/results_view.h), on hand-built
// GetResultsResponse protos and a store written from the real-layout fixtures: each point's
// precision from its plan (a dtype sweep, the backend's default), the scores of that precision and
// no other in the table and in -o json, the line saying there are none with what to run, nothing
// without a store, and the store's entries left as they were.
#include "ctl/results_view.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/plan/plan.h"
#include "ctl/cli.h"
#include "nlohmann/json.hpp"

namespace moecap::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kFixtures = MOECAP_ACCURACY_FIXTURES;
const std::string kBf16 =
    kFixtures + "/lm_eval/Qwen__Qwen3-30B-A3B/results_2025-07-14T09-31-05.482913.json";
const std::string kFp8 =
    kFixtures + "/lm_eval/Qwen__Qwen3-30B-A3B-FP8/results_2025-07-14T15-02-47.118204.json";

// The fixtures' strict GSM8K matches: 1174 of 1319 at bf16, 1161 at fp8.
constexpr char kBf16Line[] =
    "accuracy: gsm8k exact_match,strict-match 0.8901 ± 0.0086 (n 1319; lm-eval, 2025-07-14; bf16)";
constexpr char kFp8Line[] =
    "accuracy: gsm8k exact_match,strict-match 0.8802 ± 0.0089 (n 1319; lm-eval, 2025-07-14; fp8)";

// A two-point job: batch 8 at bf16 (point 0) and at fp8 (point 1), the model named by its alias.
constexpr char kDtypeSweep[] = R"(
model: Qwen/Qwen3-30B-A3B
hardware: {backend: cuda}
workload: {phases: [decode], batch_sizes: [8]}
sweeps:
  - dtype: [bf16, fp8]
)";
// No dtype on the CPU backend: the default, fp32, which no evaluator scored.
constexpr char kCpuDefault[] = R"(
model: qwen3-30b-a3b
hardware: {backend: cpu}
workload: {phases: [decode], batch_sizes: [1]}
)";

int Ctl(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  return RunCtl(args, CommandIo{out, err});
}

v1::GetResultsResponse Job(const char* plan_yaml, const std::vector<int>& points) {
  v1::GetResultsResponse r;
  r.set_job_id("job-1");
  r.set_job_name("cap");
  r.set_state(v1::JOB_STATE_SUCCEEDED);
  r.set_model("qwen3-30b-a3b");
  absl::StatusOr<v1::Plan> plan = ParsePlanYaml(plan_yaml, "plan.yaml");
  EXPECT_TRUE(plan.ok()) << plan.status();
  *r.mutable_plan() = *plan;
  for (int index : points) {
    v1::PointResult* p = r.add_results();
    p->set_point_index(index);
    p->set_hardware("h100-sxm");
    p->set_devices(1);
    v1::PhaseResult* phase = p->add_phases();
    phase->set_phase(v1::PHASE_DECODE);
    phase->set_s_mbu(0.5);
  }
  return r;
}

class ResultsAccuracyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("MOECAP_CATALOG");  // the store must be only what a test writes
    const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                                      ("results_accuracy_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    dir_ = dir.string();
    global_.catalog_dirs = {dir_};
  }
  void Import(const std::string& file) {
    ASSERT_EQ(Ctl({"accuracy", "import", file, "--write", dir_}), 0) << file;
  }
  std::string Print(const v1::GetResultsResponse& results, OutputFormat format) {
    std::ostringstream out;
    const absl::Status status = PrintJobResults(global_, results, format, false, out);
    EXPECT_TRUE(status.ok()) << status;
    return out.str();
  }
  std::string dir_;
  GlobalOptions global_;
};

TEST_F(ResultsAccuracyTest, EachPointsPrecisionIsItsWorkloadsDtype) {
  absl::StatusOr<std::vector<Dtype>> precisions =
      ResultPrecisions(Job(kDtypeSweep, {1, 0}));  // results need not come in point order
  ASSERT_TRUE(precisions.ok()) << precisions.status();
  EXPECT_EQ(*precisions, (std::vector<Dtype>{Dtype::kFp8, Dtype::kBf16}));
  precisions = ResultPrecisions(Job(kCpuDefault, {0}));
  ASSERT_TRUE(precisions.ok()) << precisions.status();
  EXPECT_EQ(*precisions, std::vector<Dtype>{Dtype::kFp32});
  // A result of a point the plan does not have is an inconsistency, said as such.
  precisions = ResultPrecisions(Job(kCpuDefault, {3}));
  EXPECT_FALSE(precisions.ok());
  EXPECT_THAT(precisions.status().message(), HasSubstr("point 3"));
}

TEST_F(ResultsAccuracyTest, TableShowsTheScoresOfThePointsPrecisionOnly) {
  Import(kBf16);
  Import(kFp8);
  // Only the fp8 point has a result: the fp8 scores, not the bf16 ones.
  std::string out = Print(Job(kDtypeSweep, {1}), OutputFormat::kTable);
  EXPECT_THAT(out, HasSubstr(std::string("\n") + kFp8Line + "\n"));
  EXPECT_THAT(out, HasSubstr("accuracy: mmlu_pro exact_match,custom-extract 0.6819"));
  EXPECT_THAT(out, HasSubstr("accuracy: and 14 subtask score(s) (-o json lists them)"));
  EXPECT_THAT(out, Not(HasSubstr("; bf16)")));
  // The block comes after the table.
  EXPECT_LT(out.find("S-MBU"), out.find(kFp8Line));
  // Both points: each precision's block, bf16's (point 0) first.
  out = Print(Job(kDtypeSweep, {0, 1}), OutputFormat::kTable);
  ASSERT_THAT(out, HasSubstr(kBf16Line));
  ASSERT_THAT(out, HasSubstr(kFp8Line));
  EXPECT_LT(out.find(kBf16Line), out.find(kFp8Line));
}

TEST_F(ResultsAccuracyTest, JsonHasTheAccuracyMember) {
  Import(kBf16);
  Import(kFp8);
  nlohmann::json j = nlohmann::json::parse(Print(Job(kDtypeSweep, {1}), OutputFormat::kJson));
  // The response as before, the scores beside it.
  EXPECT_EQ(j["job_id"], "job-1");
  ASSERT_EQ(j["results"].size(), 1u);
  ASSERT_TRUE(j["accuracy"].is_array()) << j.dump();
  ASSERT_EQ(j["accuracy"].size(), 17u);
  for (const nlohmann::json& s : j["accuracy"]) EXPECT_EQ(s["precision"], "fp8");
  EXPECT_EQ(j["accuracy"][0]["task"], "gsm8k");
  EXPECT_DOUBLE_EQ(j["accuracy"][0]["value"].get<double>(), 1161.0 / 1319);
  // Two precisions: every score of each, each naming its own.
  j = nlohmann::json::parse(Print(Job(kDtypeSweep, {0, 1}), OutputFormat::kJson));
  ASSERT_EQ(j["accuracy"].size(), 34u);
  EXPECT_EQ(j["accuracy"][0]["precision"], "bf16");
  EXPECT_DOUBLE_EQ(j["accuracy"][0]["value"].get<double>(), 1174.0 / 1319);
  EXPECT_EQ(j["accuracy"][17]["precision"], "fp8");
  // The CSV rows carry no scores.
  EXPECT_THAT(Print(Job(kDtypeSweep, {1}), OutputFormat::kCsv), Not(HasSubstr("0.88")));
}

TEST_F(ResultsAccuracyTest, NoEntryOfThePrecisionSaysSoAndWhatToRun) {
  Import(kBf16);
  const std::string out = Print(Job(kCpuDefault, {0}), OutputFormat::kTable);
  EXPECT_THAT(out, HasSubstr("accuracy: none for qwen3-30b-a3b at fp32 in the catalog directories: "
                             "import scores with `moecapctl accuracy import FILE --write DIR` and "
                             "pass --catalog DIR"));
  EXPECT_THAT(out, Not(HasSubstr(kBf16Line)));
  EXPECT_TRUE(nlohmann::json::parse(Print(Job(kCpuDefault, {0}), OutputFormat::kJson))["accuracy"]
                  .is_null());
  // The entry no result has is kept and listed.
  std::ostringstream list, err;
  ASSERT_EQ(RunCtl({"--catalog", dir_, "accuracy", "list", "-o", "json"}, CommandIo{list, err}), 0);
  const nlohmann::json entries = nlohmann::json::parse(list.str());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["model"], "qwen3-30b-a3b");
  EXPECT_EQ(entries[0]["precision"], "bf16");
  EXPECT_EQ(entries[0]["scores"].size(), 17u);
}

TEST_F(ResultsAccuracyTest, WithoutAStoreTheOutputIsAsBefore) {
  global_.catalog_dirs.clear();
  const std::string table = Print(Job(kDtypeSweep, {0, 1}), OutputFormat::kTable);
  EXPECT_THAT(table, Not(HasSubstr("accuracy")));
  EXPECT_THAT(table, HasSubstr("job job-1 (cap): qwen3-30b-a3b on 1 x h100-sxm, succeeded\n"));
  EXPECT_TRUE(nlohmann::json::parse(Print(Job(kDtypeSweep, {0}), OutputFormat::kJson))["accuracy"]
                  .is_null());
}

TEST_F(ResultsAccuracyTest, AMalformedStoreStillPrintsTheResultsThenFails) {
  std::filesystem::create_directories(dir_ + "/accuracy");
  {
    std::ofstream bad(dir_ + "/accuracy/bad.json");
    bad << R"({"model": "m", "precision": "bf16"})";
  }
  std::ostringstream out;
  const absl::Status status =
      PrintJobResults(global_, Job(kDtypeSweep, {0}), OutputFormat::kTable, false, out);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("bad.json: field 'scores'"));
  EXPECT_THAT(out.str(), HasSubstr("job job-1 (cap)"));
  EXPECT_THAT(out.str(), Not(HasSubstr("accuracy")));
}

}  // namespace
}  // namespace moecap::ctl
