// vLLM `bench serve --save-result` files: parsing, every bad-input case, and the estimate, on
// the toy model and device of testdata/catalog with METRICS.md's worked example as the batch
// (B = 2, P = 3, O = 2), whose figures are worked out by hand there and below.
#include "common/records/vllm_result.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "common/catalog.h"

namespace moecap::records {
namespace {

// Two requests of 3 prompt and 2 output tokens, no concurrency limit.
constexpr char kToyResult[] = R"({
  "backend": "vllm", "model_id": "toy/toy-moe", "date": "20250801-000000",
  "completed": 2, "total_input_tokens": 6, "total_output_tokens": 4,
  "max_concurrency": null, "duration": 10.0,
  "mean_ttft_ms": 1000.0, "median_ttft_ms": 900.0, "p99_ttft_ms": 2000.0,
  "mean_tpot_ms": 400.0, "median_tpot_ms": 400.0, "p99_tpot_ms": 800.0,
  "std_tpot_ms": 12.0, "mean_itl_ms": 400.0, "input_lens": [3, 3], "request_rate": "inf"
})";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

std::string Error(const std::string& text) {
  absl::StatusOr<VllmResult> r = ParseVllmResult(text, "result.json");
  EXPECT_FALSE(r.ok()) << text;
  return std::string(r.status().message());
}

TEST(VllmResultTest, ParsesTheFieldsAndPercentiles) {
  absl::StatusOr<VllmResult> r = ParseVllmResult(kToyResult, "result.json");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->completed, 2);
  EXPECT_EQ(r->total_input_tokens, 6);
  EXPECT_EQ(r->total_output_tokens, 4);
  EXPECT_FALSE(r->max_concurrency.has_value());
  EXPECT_DOUBLE_EQ(r->duration_s, 10);
  EXPECT_DOUBLE_EQ(r->mean_tpot_ms, 400);
  // median_* becomes p50; std_*, mean_* and itl are not percentiles of TTFT/TPOT.
  EXPECT_EQ(r->ttft_percentiles_ms, (std::map<std::string, double>{{"p50", 900}, {"p99", 2000}}));
  EXPECT_EQ(r->tpot_percentiles_ms, (std::map<std::string, double>{{"p50", 400}, {"p99", 800}}));
  EXPECT_EQ(r->model_id, "toy/toy-moe");
}

TEST(VllmResultTest, BadInputNamesTheFieldOrThePlace) {
  EXPECT_EQ(Error(Replace(kToyResult, R"("completed": 2)", R"("completed": "2")")),
            "result.json: field 'completed': expected an integer");
  EXPECT_EQ(Error(Replace(kToyResult, R"("completed": 2, )", "")),
            "result.json: field 'completed': missing");
  EXPECT_EQ(Error(Replace(kToyResult, R"("completed": 2)", R"("completed": 0)")),
            "result.json: field 'completed': must be at least 1, got 0");
  EXPECT_EQ(Error(Replace(kToyResult, R"("duration": 10.0)", R"("duration": 0)")),
            "result.json: field 'duration': must be positive, got 0");
  EXPECT_EQ(Error(Replace(kToyResult, R"("mean_ttft_ms": 1000.0)", R"("mean_ttft_ms": null)")),
            "result.json: field 'mean_ttft_ms': expected a number");
  EXPECT_EQ(Error(Replace(kToyResult, R"("max_concurrency": null)", R"("max_concurrency": 1.5)")),
            "result.json: field 'max_concurrency': expected an integer");
  EXPECT_EQ(Error(Replace(kToyResult, R"("p99_tpot_ms": 800.0)", R"("p99_tpot_ms": "slow")")),
            "result.json: field 'p99_tpot_ms': expected a number");
  // Line 3 of kToyResult loses its ':' after "completed": column 15 of that line.
  EXPECT_EQ(Error(Replace(kToyResult, R"("completed": 2)", R"("completed" 2)")),
            "result.json:3: invalid JSON at column 15: expected ':'");
  EXPECT_EQ(Error("[1]"),
            "result.json: expected a JSON object (vLLM's --save-result file), found an array");
  EXPECT_EQ(Error(""),
            "result.json:1: invalid JSON at column 1: expected a value, found the end "
            "of the line");
  EXPECT_EQ(Error(std::string(kToyResult) + "{}"),
            "result.json:8: invalid JSON at column 2: text after the JSON value");
}

class VllmEstimateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Catalog> c = Catalog::Load({std::string(MOECAP_RECORDS_TESTDATA) + "/catalog"});
    ASSERT_TRUE(c.ok()) << c.status();
    base_.model = **c->FindModel("toy-moe");
    base_.hardware = **c->FindHardware("toy-gpu");
    base_.devices = 1;
  }
  AnalysisInput base_;
};

TEST_F(VllmEstimateTest, TheWorkedExampleFromAResult) {
  absl::StatusOr<VllmResult> r = ParseVllmResult(kToyResult, "result.json");
  ASSERT_TRUE(r.ok());
  absl::StatusOr<VllmEstimate> e = EstimateFromVllm(*r, base_);
  ASSERT_TRUE(e.ok()) << e.status();
  // B = completed (max_concurrency null), P = 6/2 = 3, O = 4/2 = 2, TTFT 1 s, TPOT 0.4 s.
  EXPECT_EQ(e->input.batch, 2);
  EXPECT_EQ(e->input.prompt_len, 3);
  EXPECT_EQ(e->input.output_len, 2);
  EXPECT_DOUBLE_EQ(*e->input.ttft_s, 1.0);
  EXPECT_DOUBLE_EQ(*e->input.tpot_s, 0.4);
  ASSERT_EQ(e->assumptions.size(), 6u);
  EXPECT_EQ(e->assumptions[0],
            "batch B = 2: max_concurrency is null, so all completed requests are taken to run at "
            "once");

  absl::StatusOr<AnalysisResult> a = Analyze(e->input);
  ASSERT_TRUE(a.ok()) << a.status();
  const nlohmann::json j = VllmAnalysisJson(*r, *e, *a);
  EXPECT_TRUE(j["estimated"].get<bool>());
  EXPECT_EQ(j["mode"], "vllm-result");
  EXPECT_EQ(j["assumptions"].size(), 6u);
  // METRICS.md: the mean decode step moves 2464 bytes (A(2) = 3). At TPOT 0.4 s on 1e4 B/s:
  // 2464 / 4000 = 0.616; at p99 TPOT 0.8 s: 0.308. FLOPs 4160: S-MFU 4160 / 40000 = 0.104.
  EXPECT_NEAR(j["decode"]["s_mbu"].get<double>(), 0.616, 1e-12);
  EXPECT_NEAR(j["decode"]["s_mfu"].get<double>(), 0.104, 1e-12);
  EXPECT_NEAR(j["decode"]["at_latency_percentiles"]["p99"]["s_mbu"].get<double>(), 0.308, 1e-12);
  // Prefill, T = 6: A(6) = 4·(1 − 0.5^6) = 3.9375, Σ_l A_l = 7.875; bytes 2·(384 + 64 + 7.875·96
  // + 80) = 2568 plus KV 2·6·2·8 = 192: 2760. At the mean TTFT 1 s: 0.276; at p50 0.9 s: 0.30667.
  EXPECT_NEAR(j["prefill"]["s_mbu"].get<double>(), 0.276, 1e-12);
  EXPECT_NEAR(j["prefill"]["at_latency_percentiles"]["p50"]["s_mbu"].get<double>(), 2760 / 9000.0,
              1e-12);
  // The whole run: 10 s at $36/h is $0.10 for 4 output tokens: $25,000 per million; 0.4 tok/s.
  EXPECT_NEAR(j["run_cost"]["usd_per_million_output_tokens"].get<double>(), 25000, 1e-6);
  EXPECT_NEAR(j["run_cost"]["output_tokens_per_s"].get<double>(), 0.4, 1e-12);
  EXPECT_EQ(j["vllm"]["completed"], 2);
}

TEST_F(VllmEstimateTest, ConcurrencyIsCappedAtTheRequestsAndOneTokenHasNoDecode) {
  VllmResult r;
  r.completed = 3;
  r.total_input_tokens = 30;
  r.total_output_tokens = 3;
  r.max_concurrency = 8;
  r.duration_s = 1;
  r.mean_ttft_ms = 100;
  r.mean_tpot_ms = 0;
  absl::StatusOr<VllmEstimate> e = EstimateFromVllm(r, base_);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->input.batch, 3);
  EXPECT_EQ(e->input.output_len, 1);
  EXPECT_FALSE(e->input.tpot_s.has_value());
  EXPECT_EQ(e->assumptions[0],
            "batch B = 3: max_concurrency (8, capped at the completed requests) requests share "
            "every pass");
  EXPECT_EQ(e->assumptions[4], "no decode figures: the mean output is one token or TPOT is 0");
  EXPECT_TRUE(Analyze(e->input).ok());

  r.total_output_tokens = 1;  // 1/3 token per request rounds to 0
  absl::StatusOr<VllmEstimate> bad = EstimateFromVllm(r, base_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "field 'total_output_tokens': a mean output of 0.333333 tokens per request is below "
            "one token");
}

TEST_F(VllmEstimateTest, TheExampleFileParses) {
  std::ifstream in(std::string(MOECAP_EXAMPLES_RECORDS) + "/vllm-qwen3-30b-a3b-h100.json");
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<VllmResult> r = ParseVllmResult(text.str(), "example");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->max_concurrency, 32);
  EXPECT_EQ(r->completed, 200);
}

}  // namespace
}  // namespace moecap::records
