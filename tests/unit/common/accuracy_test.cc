// The accuracy axis: the readers on the real-layout fixtures (tests/fixtures/real/accuracy/, values
// checked by hand from the counts they were made of), their refusals naming the field and the flag
// to pass, the store's JSON round trip and merge, the accuracy/ folder, and the look-up by model
// (aliases) and precision.
#include "common/accuracy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "common/accuracy_readers.h"
#include "common/catalog.h"

namespace moecap {
namespace {

using ::testing::HasSubstr;

const std::string kFixtures = MOECAP_ACCURACY_FIXTURES;
const std::string kBf16 =
    kFixtures + "/lm_eval/Qwen__Qwen3-30B-A3B/results_2025-07-14T09-31-05.482913.json";
const std::string kFp8 =
    kFixtures + "/lm_eval/Qwen__Qwen3-30B-A3B-FP8/results_2025-07-14T15-02-47.118204.json";
const std::string kMoeCapDir = kFixtures + "/moecap/Qwen/Qwen3-30B-A3B-FP8";
const std::string kMoeCap = kMoeCapDir + "/metrics_gsm8k_20250715_101522.json";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh directory under the test's temporary directory.
std::string FreshDir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / (name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

const AccuracyScore& Score(const AccuracyEntry& e, const std::string& task,
                           const std::string& metric) {
  const AccuracyScore* s = FindScore(e.scores, task, metric);
  EXPECT_NE(s, nullptr) << task << " " << metric;
  static const AccuracyScore kNone;
  return s != nullptr ? *s : kNone;
}

AccuracyScore MakeScore(const std::string& task, const std::string& metric,
                        const std::string& filter, double value) {
  AccuracyScore s;
  s.task = task;
  s.metric = metric;
  s.filter = filter;
  s.value = value;
  return s;
}

// lm-eval's stderr of a mean of n 0/1 scores with k ones (metrics.py mean_stderr: the sample
// standard deviation over sqrt(n)) is sqrt(p(1-p)/(n-1)).
double MeanStderr(double k, double n) {
  const double p = k / n;
  return std::sqrt(p * (1 - p) / (n - 1));
}

TEST(AccuracyReadersTest, LmEvalResultsOfAVllmRun) {
  absl::StatusOr<AccuracyEntry> e = ReadAccuracyFile(kBf16, {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->source_model, "Qwen/Qwen3-30B-A3B");  // config.model_args pretrained=
  EXPECT_EQ(e->model, "Qwen/Qwen3-30B-A3B");         // unresolved until the catalog maps it
  EXPECT_EQ(e->precision, Dtype::kBf16);             // dtype=bfloat16
  // gsm8k's two filters, mmlu_pro and its 14 subjects.
  ASSERT_EQ(e->scores.size(), 17u);
  // The fixture's gsm8k: 1174 of 1319 strict matches, 1202 flexible ones.
  const AccuracyScore& strict = Score(*e, "gsm8k", "exact_match,strict-match");
  EXPECT_DOUBLE_EQ(strict.value, 1174.0 / 1319);
  EXPECT_NEAR(*strict.std_error, MeanStderr(1174, 1319), 1e-15);
  EXPECT_EQ(strict.samples, 1319);  // n-samples.gsm8k.effective
  EXPECT_EQ(strict.higher_is_better, true);
  EXPECT_EQ(strict.filter, "strict-match");
  EXPECT_EQ(strict.group, "");
  EXPECT_EQ(strict.source, "lm-eval");
  EXPECT_EQ(strict.source_file, kBf16);
  // date 1752481811.279 s: 20283 days (2025-07-14) and 30611 s (08:30:11), UTC.
  EXPECT_EQ(strict.date, "2025-07-14T08:30:11Z");
  EXPECT_DOUBLE_EQ(Score(*e, "gsm8k", "exact_match,flexible-extract").value, 1202.0 / 1319);
  // "exact_match" alone picks the task's first score of that metric: strict-match.
  EXPECT_EQ(Score(*e, "gsm8k", "exact_match").filter, "strict-match");
  // The group: its subjects' correct answers over their documents, 8296 of 12032; its count is
  // theirs (0.4 pops the group's own).
  const AccuracyScore& group = Score(*e, "mmlu_pro", "");
  EXPECT_DOUBLE_EQ(group.value, 8296.0 / 12032);
  EXPECT_EQ(group.samples,
            717 + 789 + 1132 + 410 + 844 + 969 + 818 + 381 + 1101 + 1351 + 924 + 499 + 1299 + 798);
  const AccuracyScore& law = Score(*e, "mmlu_pro_law", "");
  EXPECT_EQ(law.group, "mmlu_pro");
  EXPECT_DOUBLE_EQ(law.value, 439.0 / 1101);
  EXPECT_EQ(law.samples, 1101);
  EXPECT_EQ(law.filter, "custom-extract");
}

TEST(AccuracyReadersTest, VllmQuantizationWinsOverTheActivationDtype) {
  // model_args pretrained=Qwen/Qwen3-30B-A3B-FP8,quantization=fp8,dtype=bfloat16.
  absl::StatusOr<AccuracyEntry> e = ReadAccuracyFile(kFp8, {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->source_model, "Qwen/Qwen3-30B-A3B-FP8");
  EXPECT_EQ(e->precision, Dtype::kFp8);
  EXPECT_DOUBLE_EQ(Score(*e, "gsm8k", "exact_match,strict-match").value, 1161.0 / 1319);
  // --precision and --model win over the file.
  AccuracyOverrides o;
  o.precision = Dtype::kFp8Block128;
  o.model = "qwen3-30b";
  e = ReadAccuracyFile(kFp8, o);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->precision, Dtype::kFp8Block128);
  EXPECT_EQ(e->model, "qwen3-30b");
  EXPECT_EQ(e->source_model, "Qwen/Qwen3-30B-A3B-FP8");
}

TEST(AccuracyReadersTest, MoeCapMetricsWithTheMetadataBesideIt) {
  EXPECT_EQ(MoeCapMetadataPath(kMoeCap), kMoeCapDir + "/metadata_gsm8k_20250715_101522.json");
  EXPECT_EQ(MoeCapMetadataPath(kBf16), "");
  absl::StatusOr<AccuracyEntry> e = ReadAccuracyFile(kMoeCap, {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->source_model, "Qwen/Qwen3-30B-A3B-FP8");  // model_config.model_name
  EXPECT_EQ(e->precision, Dtype::kFp8);                  // model_config.precision "fp8"
  ASSERT_EQ(e->scores.size(), 1u);
  const AccuracyScore& s = e->scores.front();
  EXPECT_EQ(s.task, "gsm8k");  // from the file name only
  EXPECT_EQ(s.metric, "acc");  // quality.acc: 1193 of 1319
  EXPECT_EQ(s.filter, "");
  EXPECT_DOUBLE_EQ(s.value, 1193.0 / 1319);
  EXPECT_EQ(s.samples, 1319);  // quality.total, not completed (1316): failures score zero
  EXPECT_FALSE(s.std_error.has_value());
  EXPECT_EQ(s.source, "moe-cap");
  EXPECT_EQ(s.date, "2025-07-15T10:15:22");  // local time: no zone
}

TEST(AccuracyReadersTest, AFileThatNamesNoModelOrPrecisionSaysWhatToPass) {
  // The MoE-CAP metrics file alone: its model and precision are only in the metadata file.
  const std::string metrics = Slurp(kMoeCap);
  absl::StatusOr<AccuracyEntry> e = ParseAccuracyFile(metrics, kMoeCap, {});
  EXPECT_THAT(e.status().message(), HasSubstr("names no model: MoE-CAP writes it in "
                                              "metadata_gsm8k_20250715_101522.json beside it"));
  EXPECT_THAT(e.status().message(), HasSubstr("pass --model"));
  AccuracyOverrides o;
  o.model = "qwen3-30b-a3b";
  e = ParseAccuracyFile(metrics, kMoeCap, o);
  EXPECT_THAT(e.status().message(), HasSubstr("names no precision"));
  EXPECT_THAT(e.status().message(), HasSubstr("pass --precision"));
  o.precision = Dtype::kFp8;
  EXPECT_TRUE(ParseAccuracyFile(metrics, kMoeCap, o).ok());
  // Renamed: the dataset is gone with the name.
  e = ParseAccuracyFile(metrics, "/tmp/gsm8k.json", o);
  EXPECT_THAT(e.status().message(), HasSubstr("/tmp/gsm8k.json: names no dataset"));
  EXPECT_THAT(e.status().message(), HasSubstr("pass --task"));
  o.task = "gsm8k";
  EXPECT_TRUE(ParseAccuracyFile(metrics, "/tmp/gsm8k.json", o).ok());

  // lm-eval with dtype=auto, no quantization= and no model_dtype (vLLM): no precision.
  std::string results = Slurp(kBf16);
  results = absl::StrReplaceAll(results, {{"dtype=bfloat16", "dtype=auto"}});
  e = ParseAccuracyFile(results, "r.json", {});
  EXPECT_THAT(e.status().message(), HasSubstr("r.json: names no precision"));
  EXPECT_THAT(e.status().message(), HasSubstr("pass --precision"));
  // No pretrained= and no model_name: no model.
  results = absl::StrReplaceAll(results,
                                {{"pretrained=", "checkpoint="},
                                 {R"("model_name": "Qwen/Qwen3-30B-A3B")", R"("model_name": "")"}});
  AccuracyOverrides bf16;
  bf16.precision = Dtype::kBf16;
  e = ParseAccuracyFile(results, "r.json", bf16);
  EXPECT_THAT(e.status().message(), HasSubstr("r.json: names no model"));
  EXPECT_THAT(e.status().message(), HasSubstr("pass --model"));
}

TEST(AccuracyReadersTest, MalformedFilesAreRefusedNamingTheField) {
  const std::string results = Slurp(kBf16);
  // A score that is not a number; Python writes float('nan') as a bare NaN.
  for (const char* bad : {R"("not run")", "NaN"}) {
    const std::string text =
        absl::StrReplaceAll(results, {{R"("exact_match,strict-match": 0.890068233510235)",
                                       std::string(R"("exact_match,strict-match": )") + bad}});
    EXPECT_THAT(ParseAccuracyFile(text, "r.json", {}).status().message(),
                HasSubstr("r.json: field 'results.gsm8k.exact_match,strict-match': expected a "
                          "number"))
        << bad;
  }
  // A NaN stderr is no stderr (as lm-eval's "N/A").
  const std::string nan_stderr =
      absl::StrReplaceAll(results, {{R"("exact_match_stderr,strict-match": 0.008616195587865307)",
                                     R"("exact_match_stderr,strict-match": NaN)"}});
  absl::StatusOr<AccuracyEntry> e = ParseAccuracyFile(nan_stderr, "r.json", {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(Score(*e, "gsm8k", "exact_match,strict-match").std_error.has_value());
  // A precision moecap has no dtype for.
  const std::string bnb =
      absl::StrReplaceAll(results, {{"dtype=bfloat16", "dtype=bfloat16,load_in_4bit=True"}});
  EXPECT_THAT(ParseAccuracyFile(bnb, "r.json", {}).status().message(),
              HasSubstr("r.json: field 'config.model_args': load_in_4bit=True"));
  const std::string awq_marlin =
      absl::StrReplaceAll(results, {{"dtype=bfloat16", "quantization=awq_marlin"}});
  EXPECT_THAT(ParseAccuracyFile(awq_marlin, "r.json", {}).status().message(),
              HasSubstr("field 'config.model_args': 'awq_marlin' is not a precision"));
  // MoE-CAP: a run without accuracy evaluation.
  std::string metrics = Slurp(kMoeCap);
  metrics = absl::StrReplaceAll(metrics, {{R"("acc": 0.9044730856709629,)", ""}});
  AccuracyOverrides o;
  o.model = "m";
  o.precision = Dtype::kBf16;
  EXPECT_THAT(ParseAccuracyFile(metrics, kMoeCap, o).status().message(),
              HasSubstr("field 'quality.acc': absent: the run evaluated no accuracy"));
  // Neither producer's layout, or not JSON at all.
  EXPECT_THAT(ParseAccuracyFile(R"({"hello": 1})", "x.json", {}).status().message(),
              HasSubstr("x.json: not an accuracy file moecap reads"));
  EXPECT_THAT(ParseAccuracyFile("{oops", "x.json", {}).status().message(),
              HasSubstr("x.json: not JSON"));
  EXPECT_THAT(
      ParseAccuracyFile(Slurp(MoeCapMetadataPath(kMoeCap)), "m.json", {}).status().message(),
      HasSubstr("import the metrics_<dataset>_<ts>.json beside it"));
}

// What the fuzzer (tests/fuzz/accuracy_reader_fuzz.cc) found: entries the store would refuse once
// written, and a date that did not fit the seconds it was converted to.
TEST(AccuracyReadersTest, WhatImportWritesTheStoreReadsBack) {
  const std::string lm_eval_keys =
      R"("versions": {"t": 1}, "config": {"model_args": "pretrained=acme/moe,dtype=bfloat16"})";
  // Counts that are negative or do not fit int64 are unknown, not wrapped; a group's sum too.
  absl::StatusOr<AccuracyEntry> e = ParseAccuracyFile(
      R"({"results": {"g": {"acc,none": 0.5}, "a": {"acc,none": 0.1, "sample_len": -7},
          "b": {"acc,none": 0.2, "sample_len": 18446744073709551615}},
          "group_subtasks": {"g": ["a", "b"]},
          "n-samples": {"a": {"effective": 9223372036854775807},
                        "b": {"effective": 9223372036854775807}},
          "date": 1e300, )" +
          lm_eval_keys + "}",
      "r.json", {});
  ASSERT_TRUE(e.ok()) << e.status();
  // n-samples' counts, not -7 or 2^64 - 1.
  EXPECT_EQ(Score(*e, "a", "acc").samples, 9223372036854775807);
  EXPECT_EQ(Score(*e, "b", "acc").samples, 9223372036854775807);
  EXPECT_FALSE(Score(*e, "g", "acc").samples.has_value());  // the sum overflows
  EXPECT_EQ(Score(*e, "g", "acc").date, "");                // no time.time() of a run
  EXPECT_TRUE(ParseAccuracyEntry(AccuracyEntryJson(*e).dump(), "s.json").ok());
  // A key without a metric is no score; a task without a name is refused.
  e = ParseAccuracyFile(
      R"({"results": {"t": {",none": 0.3, "acc,none": 0.4}}, )" + lm_eval_keys + "}", "r.json", {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->scores.size(), 1u);
  EXPECT_THAT(
      ParseAccuracyFile(R"({"results": {"": {"acc,none": 1}}, )" + lm_eval_keys + "}", "r.json", {})
          .status()
          .message(),
      HasSubstr("r.json: field 'results': a task with an empty name"));
  // A blank model name is no name: the store could not file it.
  EXPECT_THAT(ParseAccuracyFile(R"({"results": {"t": {"acc,none": 1}}, "model_name": "  ",
                                    "versions": {}, "config": {"model_args": "dtype=bfloat16"}})",
                                "r.json", {})
                  .status()
                  .message(),
              HasSubstr("r.json: names no model"));
}

TEST(AccuracyStoreTest, RoundTripThroughTheStoreJson) {
  absl::StatusOr<AccuracyEntry> e = ReadAccuracyFile(kBf16, {});
  ASSERT_TRUE(e.ok()) << e.status();
  const std::string text = AccuracyEntryJson(*e).dump(2);
  absl::StatusOr<AccuracyEntry> back = ParseAccuracyEntry(text, "store.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->origin, "store.json");
  EXPECT_EQ(back->model, e->model);
  EXPECT_EQ(back->source_model, e->source_model);
  EXPECT_EQ(back->precision, e->precision);
  ASSERT_EQ(back->scores.size(), e->scores.size());
  for (size_t i = 0; i < e->scores.size(); ++i) {
    const AccuracyScore &a = e->scores[i], &b = back->scores[i];
    EXPECT_EQ(a.task, b.task);
    EXPECT_EQ(MetricName(a), MetricName(b));
    EXPECT_EQ(a.value, b.value);  // exact: JSON numbers round-trip doubles
    EXPECT_EQ(a.std_error, b.std_error);
    EXPECT_EQ(a.samples, b.samples);
    EXPECT_EQ(a.higher_is_better, b.higher_is_better);
    EXPECT_EQ(a.group, b.group);
    EXPECT_EQ(a.source, b.source);
    EXPECT_EQ(a.source_file, b.source_file);
    EXPECT_EQ(a.date, b.date);
  }
  AccuracyEntry named = *e;
  named.model = "Acme/My MoE";
  EXPECT_EQ(AccuracyFileName(named), "acme--my-moe-bf16.json");
}

TEST(AccuracyStoreTest, StoreFilesAreReadStrictly) {
  const std::string good =
      R"({"model": "m", "precision": "bf16", "scores": [{"task": "gsm8k", "metric": "acc",)"
      R"( "value": 0.5, "source": "moe-cap", "source_file": "f.json"}]})";
  ASSERT_TRUE(ParseAccuracyEntry(good, "e.json").ok());
  EXPECT_EQ(ParseAccuracyEntry(absl::StrReplaceAll(good, {{R"("value")", R"("valu")"}}), "e.json")
                .status()
                .message(),
            "e.json: field 'scores[0].value': required but missing; see docs/cap.md");
  EXPECT_EQ(
      ParseAccuracyEntry(absl::StrReplaceAll(good, {{R"("source": "moe-cap")",
                                                     R"("source": "moe-cap", "vlaue": 1)"}}),
                         "e.json")
          .status()
          .message(),
      "e.json: unknown field 'scores[0].vlaue' (did you mean 'scores[0].value'?); see docs/cap.md");
  EXPECT_THAT(ParseAccuracyEntry(absl::StrReplaceAll(good, {{"0.5", R"("high")"}}), "e.json")
                  .status()
                  .message(),
              HasSubstr("e.json: field 'scores[0].value': expected a number"));
  EXPECT_THAT(ParseAccuracyEntry(absl::StrReplaceAll(good, {{R"("bf16")", R"("bf15")"}}), "e.json")
                  .status()
                  .message(),
              HasSubstr("e.json: field 'precision': "));
  EXPECT_THAT(ParseAccuracyEntry(Slurp(kBf16), "e.json").status().message(),
              HasSubstr("import it with `moecapctl accuracy import FILE --write DIR`"));
}

TEST(AccuracyStoreTest, WritingMergesIntoTheEntryOfTheSameModelAndPrecision) {
  const std::string dir = FreshDir("accuracy_store");
  absl::StatusOr<AccuracyEntry> lm_eval = ReadAccuracyFile(kFp8, {});
  absl::StatusOr<AccuracyEntry> moe_cap = ReadAccuracyFile(kMoeCap, {});
  ASSERT_TRUE(lm_eval.ok() && moe_cap.ok());
  absl::StatusOr<AccuracyWrite> w = WriteAccuracyEntry(dir, *lm_eval);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_FALSE(w->merged);
  // Both name Qwen/Qwen3-30B-A3B-FP8 at fp8: one file, 17 + 1 scores.
  w = WriteAccuracyEntry(dir, *moe_cap);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(w->merged);
  EXPECT_TRUE(w->replaced.empty());
  EXPECT_EQ(w->path, dir + "/accuracy/qwen--qwen3-30b-a3b-fp8-fp8.json");
  absl::StatusOr<std::vector<AccuracyEntry>> loaded = LoadAccuracyDir(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ(loaded->front().scores.size(), 18u);
  EXPECT_EQ(loaded->front().origin, w->path);
  // The same file again replaces its scores, keeps MoE-CAP's, and says which it replaced.
  w = WriteAccuracyEntry(dir, *lm_eval);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->replaced.size(), 17u);
  loaded = LoadAccuracyDir(dir);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->front().scores.size(), 18u);
  // A malformed file there is not overwritten.
  std::ofstream(w->path) << "{}";
  w = WriteAccuracyEntry(dir, *lm_eval);
  EXPECT_THAT(w.status().message(), HasSubstr("not overwritten"));
  EXPECT_EQ(Slurp(dir + "/accuracy/qwen--qwen3-30b-a3b-fp8-fp8.json"), "{}");
}

TEST(AccuracyStoreTest, TheFolderMayBeMissingButNotTheDirectory) {
  const std::string dir = FreshDir("accuracy_empty");
  absl::StatusOr<std::vector<AccuracyEntry>> loaded = LoadAccuracyDir(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->empty());
  EXPECT_FALSE(LoadAccuracyDir(dir + "/nowhere").ok());
  // Files other than *.json are not entries; a producer's file is refused by name.
  std::filesystem::create_directories(dir + "/accuracy");
  std::ofstream(dir + "/accuracy/README.md") << "notes";
  EXPECT_TRUE(LoadAccuracyDir(dir).ok());
  std::filesystem::copy_file(kBf16, dir + "/accuracy/results.json");
  EXPECT_THAT(LoadAccuracyDir(dir).status().message(),
              HasSubstr(dir + "/accuracy/results.json: an evaluator's file"));
}

class AccuracyLookupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Catalog> c = Catalog::Builtin();
    ASSERT_TRUE(c.ok()) << c.status();
    catalog_ = *std::move(c);
    absl::StatusOr<const ModelSpec*> m = catalog_.FindModel("qwen3-30b-a3b");
    ASSERT_TRUE(m.ok());
    model_ = *m;
  }
  Catalog catalog_;
  const ModelSpec* model_ = nullptr;
};

TEST_F(AccuracyLookupTest, ModelsResolveByNameAliasOrCheckpointPath) {
  AccuracyEntry e;
  for (const char* name : {"Qwen/Qwen3-30B-A3B-FP8", "/models/Qwen/Qwen3-30B-A3B/",
                           "/data/qwen3-30b-a3b", "QWEN3_30B_A3B"}) {
    e.model = name;
    EXPECT_TRUE(ResolveAccuracyModel(catalog_, &e)) << name;
    EXPECT_EQ(e.model, "qwen3-30b-a3b") << name;
  }
  e.model = "Acme/Secret MoE";
  EXPECT_FALSE(ResolveAccuracyModel(catalog_, &e));
  EXPECT_EQ(e.model, "acme/secret-moe");
}

TEST_F(AccuracyLookupTest, FindAccuracyByAliasAndPrecision) {
  AccuracyEntry by_alias;  // an entry whose model was not resolved: it says an alias
  by_alias.model = "Qwen/Qwen3-30B-A3B-Instruct-2507";
  by_alias.precision = Dtype::kFp8;
  by_alias.scores.push_back(MakeScore("gsm8k", "acc", "", 0.9));
  AccuracyEntry overridden;  // imported with --model: not found by the checkpoint it names
  overridden.model = "acme-finetune";
  overridden.source_model = "Qwen/Qwen3-30B-A3B";
  overridden.precision = Dtype::kBf16;
  overridden.scores.push_back(MakeScore("gsm8k", "acc", "", 0.95));
  AccuracyEntry by_name;
  by_name.model = "qwen3-30b-a3b";
  by_name.precision = Dtype::kBf16;
  by_name.scores.push_back(MakeScore("gsm8k", "acc", "", 0.92));
  AccuracyEntry other;
  other.model = "mixtral-8x7b";
  other.precision = Dtype::kBf16;
  other.scores.push_back(MakeScore("gsm8k", "acc", "", 0.6));
  const std::vector<AccuracyEntry> entries = {by_alias, overridden, by_name, other};

  std::vector<const AccuracyEntry*> found = FindAccuracy(entries, *model_, Dtype::kFp8);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found.front()->model, "Qwen/Qwen3-30B-A3B-Instruct-2507");
  // The evaluators' plain fp8 serves a block-scaled fp8 run; not the other way round.
  EXPECT_EQ(FindAccuracy(entries, *model_, Dtype::kFp8Block128).size(), 1u);
  AccuracyEntry block = by_alias;
  block.precision = Dtype::kFp8Block128;
  EXPECT_TRUE(FindAccuracy({block}, *model_, Dtype::kFp8).empty());
  found = FindAccuracy(entries, *model_, Dtype::kBf16);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found.front()->model, "qwen3-30b-a3b");
  EXPECT_TRUE(FindAccuracy(entries, *model_, Dtype::kInt8).empty());
}

TEST(AccuracyMergeTest, LaterEntriesWinPerTaskMetricAndFilter) {
  AccuracyEntry first, second;
  first.scores = {MakeScore("gsm8k", "exact_match", "strict-match", 0.8),
                  MakeScore("mmlu_pro", "exact_match", "", 0.6)};
  second.scores = {MakeScore("GSM8K", "exact_match", "strict-match", 0.9),
                   MakeScore("gsm8k", "acc", "", 0.85)};
  const std::vector<AccuracyScore> merged = MergedScores({&first, &second});
  ASSERT_EQ(merged.size(), 3u);
  EXPECT_EQ(merged[0].value, 0.9);  // replaced in place: task names compare normalised
  EXPECT_EQ(merged[1].task, "mmlu_pro");
  EXPECT_EQ(merged[2].metric, "acc");
  EXPECT_EQ(FindScore(merged, "gsm8k", "acc")->value, 0.85);
  EXPECT_EQ(FindScore(merged, "gsm8k", "")->metric, "exact_match");
  EXPECT_EQ(FindScore(merged, "gsm8k", "exact_match,flexible-extract"), nullptr);
  EXPECT_EQ(FindScore(merged, "arc", ""), nullptr);
}

}  // namespace
}  // namespace moecap
