// `moecapctl accuracy import|list` and the accuracy `analyze` shows, run in-process (RunCtl) on
// the real-layout fixtures: the entry printed or written, the list marking models the catalog
// lacks, usage errors, and the "accuracy" key and lines of analyze's step and records modes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
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
const std::string kMoeCap =
    kFixtures + "/moecap/Qwen/Qwen3-30B-A3B-FP8/metrics_gsm8k_20250715_101522.json";
const std::string kExampleRecords = MOECAP_EXAMPLES_RECORDS "/mixtral-8x7b-h100x2.jsonl";

struct Result {
  int exit_code;
  std::string out, err;
};

Result Ctl(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = RunCtl(args, CommandIo{out, err});
  return {code, out.str(), err.str()};
}

std::string FreshDir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / (name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

class AccuracyCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The store must be only what a test writes.
    ::unsetenv("MOECAP_CATALOG");
    dir_ = FreshDir("accuracy_cli");
  }
  std::string dir_;
};

TEST_F(AccuracyCliTest, ImportPrintsTheEntryResolvedAgainstTheCatalog) {
  Result r = Ctl({"accuracy", "import", kFp8});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  // Qwen/Qwen3-30B-A3B-FP8 is an alias of the built-in qwen3-30b-a3b.
  EXPECT_EQ(j["model"], "qwen3-30b-a3b");
  EXPECT_EQ(j["source_model"], "Qwen/Qwen3-30B-A3B-FP8");
  EXPECT_EQ(j["precision"], "fp8");
  ASSERT_EQ(j["scores"].size(), 17u);
  EXPECT_EQ(j["scores"][0]["task"], "gsm8k");
  EXPECT_EQ(j["scores"][0]["filter"], "strict-match");
  EXPECT_DOUBLE_EQ(j["scores"][0]["value"].get<double>(), 1161.0 / 1319);
  EXPECT_EQ(j["scores"][0]["n"], 1319);
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(AccuracyCliTest, WriteThenListMarksModelsTheCatalogLacks) {
  for (const std::string& file : {kBf16, kMoeCap}) {
    Result r = Ctl({"accuracy", "import", file, "--write", dir_});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("wrote " + dir_ + "/accuracy/qwen3-30b-a3b-"));
  }
  // A model no catalog entry names: kept under its own name, with a note.
  Result r = Ctl({"accuracy", "import", kBf16, "--model", "acme/secret-moe", "--write", dir_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("model 'acme/secret-moe' is not in the catalog"));
  r = Ctl({"--catalog", dir_, "accuracy", "list"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> rows = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_GE(rows.size(), 5u) << r.out;  // header, rule, three entries, the count
  // Files in name order: acme--secret-moe-bf16, qwen3-30b-a3b-bf16, qwen3-30b-a3b-fp8.
  EXPECT_THAT(rows[2], HasSubstr("acme/secret-moe"));
  EXPECT_THAT(rows[2], HasSubstr("NOT IN CATALOG"));
  EXPECT_THAT(rows[3], HasSubstr("qwen3-30b-a3b "));
  EXPECT_THAT(rows[3], HasSubstr(" bf16 "));
  EXPECT_THAT(rows[3], HasSubstr("gsm8k, mmlu_pro (+14 subtasks)"));
  EXPECT_THAT(rows[4], HasSubstr(" fp8 "));
  EXPECT_THAT(rows[4], Not(HasSubstr("NOT IN CATALOG")));
  EXPECT_THAT(r.out, HasSubstr("1 entry names a model not in the catalog"));
  r = Ctl({"--catalog", dir_, "accuracy", "list", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0]["in_catalog"], false);
  EXPECT_EQ(j[1]["in_catalog"], true);
  EXPECT_EQ(j[2]["scores"].size(), 1u);  // MoE-CAP's gsm8k acc at fp8
  r = Ctl({"--catalog", dir_, "accuracy", "list", "-o", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // A header and one row per score: 17 + 17 + 1.
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1 + 17 + 17 + 1);
}

TEST_F(AccuracyCliTest, UsageAndInputErrorsNameTheFlagOrTheField) {
  Result r = Ctl({"accuracy", "import", kBf16, "--precision", "fp9"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("moecapctl accuracy: error: --precision: "));
  r = Ctl({"accuracy", "import", dir_ + "/missing.json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot read '" + dir_ + "/missing.json'"));
  r = Ctl({"accuracy"});
  EXPECT_EQ(r.exit_code, 2);
  // A malformed entry in a catalog directory stops what reads the store, naming it.
  std::filesystem::create_directories(dir_ + "/accuracy");
  std::ofstream(dir_ + "/accuracy/bad.json") << R"({"model": "m", "precision": "bf16"})";
  r = Ctl({"--catalog", dir_, "accuracy", "list"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(dir_ + "/accuracy/bad.json: field 'scores': required"));
}

TEST_F(AccuracyCliTest, AnalyzeShowsTheScoresOfItsModelAndPrecision) {
  for (const std::string& file : {kBf16, kFp8, kMoeCap}) {
    ASSERT_EQ(Ctl({"accuracy", "import", file, "--write", dir_}).exit_code, 0);
  }
  const std::vector<std::string> step = {
      "--catalog", dir_, "analyze",      "--model", "qwen3-30b-a3b", "--hardware", "h100-sxm",
      "--batch",   "8",  "--prompt-len", "512",     "--output-len",  "64"};
  std::vector<std::string> args = step;
  for (const char* a : {"--dtype", "fp8", "-o", "json"}) args.push_back(a);
  Result r = Ctl(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["accuracy"].is_array());
  ASSERT_EQ(j["accuracy"].size(), 18u);  // lm-eval's 17 and MoE-CAP's gsm8k acc
  EXPECT_EQ(j["accuracy"][0]["precision"], "fp8");
  EXPECT_DOUBLE_EQ(j["accuracy"][0]["value"].get<double>(), 1161.0 / 1319);
  EXPECT_EQ(j["accuracy"][17]["source"], "moe-cap");
  // The table: one line per top-level score, the subtasks counted.
  args = step;
  args.push_back("--dtype");
  args.push_back("bf16");
  r = Ctl(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("accuracy: gsm8k exact_match,strict-match 0.8901 ± 0.0086 (n "
                               "1319; lm-eval, 2025-07-14; bf16)\n"));
  EXPECT_THAT(r.out, HasSubstr("accuracy: mmlu_pro exact_match,custom-extract 0.6895"));
  EXPECT_THAT(r.out, HasSubstr("accuracy: and 14 subtask score(s)"));
  // A model with no entry: null, and a line saying so.
  args = {"--catalog", dir_,           "analyze", "--model", "mixtral-8x7b", "--hardware",
          "h100-sxm",  "--prompt-len", "512",     "-o",      "json"};
  r = Ctl(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(nlohmann::json::parse(r.out)["accuracy"].is_null());
  args.pop_back();
  args.pop_back();
  r = Ctl(args);
  EXPECT_THAT(r.out, HasSubstr("accuracy: none for mixtral-8x7b at bf16 in the catalog "
                               "directories"));
  // No store at all: the table is as before.
  r = Ctl({"analyze", "--model", "mixtral-8x7b", "--hardware", "h100-sxm", "--prompt-len", "512"});
  EXPECT_THAT(r.out, Not(HasSubstr("accuracy")));
}

TEST_F(AccuracyCliTest, AnalyzeRecordsShowsThemToo) {
  Result r = Ctl({"accuracy", "import", kBf16, "--model", "mixtral-8x7b", "--write", dir_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Ctl({"--catalog", dir_, "analyze", "--records", kExampleRecords, "--model", "mixtral-8x7b",
           "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j["accuracy"].is_array()) << r.out;
  EXPECT_EQ(j["accuracy"][0]["task"], "gsm8k");
  EXPECT_EQ(j["accuracy"][0]["precision"], "bf16");
  r = Ctl({"--catalog", dir_, "analyze", "--records", kExampleRecords, "--model", "mixtral-8x7b"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("accuracy: gsm8k exact_match,strict-match 0.8901"));
}

}  // namespace
}  // namespace moecap::ctl
