// The step calculator behind `moecapctl analyze`: utilisations, roofline, cost and JSON.
#include "common/analysis.h"

#include <gtest/gtest.h>

#include <cmath>

#include "absl/strings/match.h"
#include "common/catalog.h"
#include "tests/unit/common/test_models.h"

namespace moecap {
namespace {

HardwareSpec TestGpu() {
  HardwareSpec hw;
  hw.name = "test-gpu";
  hw.peak_bandwidth_bytes_s = 3.35e12;
  hw.peak_flops[Dtype::kBf16] = 989.5e12;
  hw.tdp_watts = 700;
  hw.purchase_usd = 30000;
  hw.cloud_usd_per_hour = 3.0;
  return hw;
}

AnalysisInput MixtralInput() {
  AnalysisInput in;
  in.model = testing::Mixtral8x7b();
  in.hardware = TestGpu();
  in.devices = 2;
  in.batch = 32;
  in.prompt_len = 512;
  in.output_len = 256;
  in.ttft_s = 0.41;
  in.tpot_s = 0.023;
  return in;
}

TEST(AnalyzeTest, MeasuredUtilizationsUseTheCounts) {
  absl::StatusOr<AnalysisResult> r = Analyze(MixtralInput());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->decode.has_value());
  ASSERT_TRUE(r->decode->measured.has_value());
  // S-MBU_decode = bytes_decode_step / (TPOT·G·BW).
  EXPECT_DOUBLE_EQ(r->decode->measured->s_mbu, r->decode->counts.bytes() / (0.023 * 2 * 3.35e12));
  EXPECT_DOUBLE_EQ(r->prefill.measured->s_mfu, r->prefill.counts.flops() / (0.41 * 2 * 989.5e12));
  // 32 decode tokens activate 7.99919638 experts per layer under uniform routing.
  EXPECT_NEAR(r->decode->activated_experts_per_layer, 7.99919638, 1e-8);
  // Dense counting reads every expert: more bytes than sparse, never fewer.
  EXPECT_GT(r->decode->dense_counts.bytes(), r->decode->counts.bytes());
  EXPECT_DOUBLE_EQ(r->decode_mean_context, 640.0);  // P + O/2
}

TEST(AnalyzeTest, RooflineOfAMemoryBoundDecodeGivesFullBandwidth) {
  AnalysisInput in = MixtralInput();
  in.ttft_s.reset();
  in.tpot_s.reset();
  in.batch = 1;
  absl::StatusOr<AnalysisResult> r = Analyze(in);
  ASSERT_TRUE(r.ok()) << r.status();
  // Batch-1 decode is memory-bound: its roofline time is bytes/(G·BW), where S-MBU is 1.
  EXPECT_TRUE(r->decode->memory_bound);
  EXPECT_DOUBLE_EQ(r->decode->roofline_s, r->decode->counts.bytes() / (2 * 3.35e12));
  EXPECT_DOUBLE_EQ(r->decode->at_roofline.s_mbu, 1.0);
  EXPECT_LT(r->decode->at_roofline.s_mfu, 1.0);
  EXPECT_FALSE(r->decode->measured.has_value());
  // Without times the cost is that of the roofline times, and says so.
  ASSERT_TRUE(r->cost.has_value());
  EXPECT_TRUE(r->cost->at_roofline);
}

TEST(AnalyzeTest, AFigureOverTheRooflineIsInvalidWithItsLikelyCause) {
  AnalysisInput in = MixtralInput();
  // The decode step's bytes need bytes/(2·3.35e12) s; a TPOT 100× under that is impossible.
  absl::StatusOr<AnalysisResult> honest = Analyze(in);
  ASSERT_TRUE(honest.ok());
  EXPECT_TRUE(honest->decode->validity.valid);
  EXPECT_TRUE(AnalysisValidity(*honest).valid);
  in.tpot_s = honest->decode->roofline_s / 100;
  absl::StatusOr<AnalysisResult> r = Analyze(in);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->prefill.validity.valid);
  ASSERT_FALSE(r->decode->validity.valid);
  EXPECT_NEAR(r->decode->measured->s_mbu, 100, 1e-9);
  // Far over: the time unit is named first.
  EXPECT_TRUE(
      absl::StrContains(r->decode->validity.reasons.front(), "decode S-MBU 10000.0% is over 100%"))
      << r->decode->validity.reasons.front();
  EXPECT_TRUE(absl::StrContains(r->decode->validity.reasons.front(), "likely a time in the wrong"));
  const nlohmann::json j = AnalysisJson(in, *r);
  EXPECT_EQ(j["valid"], false);
  EXPECT_EQ(j["decode"]["valid"], false);
  EXPECT_EQ(j["prefill"]["valid"], true);
  // A little over: the device count first.
  in.tpot_s = honest->decode->roofline_s / 1.5;
  r = Analyze(in);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(absl::StrContains(r->decode->validity.reasons.front(), "likely too few devices"));
}

TEST(AnalyzeTest, PeakFollowsTheComputePrecision) {
  AnalysisInput in = MixtralInput();
  in.hardware.peak_flops[Dtype::kFp8] = 1979e12;
  in.model.expert_dtype = Dtype::kFp8Block128;  // fp8 experts compute in fp8
  absl::StatusOr<AnalysisResult> r = Analyze(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dtypes.compute, Dtype::kFp8);
  EXPECT_DOUBLE_EQ(r->peak_flops, 1979e12);
  EXPECT_EQ(r->dtypes.kv_cache, Dtype::kBf16);
  in.precision.compute = Dtype::kBf16;
  r = Analyze(in);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->peak_flops, 989.5e12);
}

TEST(AnalyzeTest, CostPerMillionTokens) {
  absl::StatusOr<AnalysisResult> r = Analyze(MixtralInput());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->cost.has_value());
  // t = 0.41 + 255·0.023 = 6.275 s; $3/h · 2 GPUs · 6.275/3600 h = $0.010458333 for
  // 32·256 = 8192 output tokens: $1.276652 per million; 32·768 = 24,576 total: $0.425551.
  EXPECT_DOUBLE_EQ(r->cost->batch_seconds, 6.275);
  EXPECT_NEAR(r->cost->usd_per_million_output_tokens, 1.276652018, 1e-9);
  EXPECT_NEAR(r->cost->usd_per_million_total_tokens, 0.425550673, 1e-9);
  EXPECT_DOUBLE_EQ(r->cost->system_purchase_usd, 60000.0);
  EXPECT_FALSE(r->cost->at_roofline);
  EXPECT_EQ(r->cost->price.basis, "cloud");
}

TEST(AnalyzeTest, OneOutputTokenHasNoDecodePhase) {
  AnalysisInput in = MixtralInput();
  in.output_len = 1;
  in.tpot_s.reset();
  absl::StatusOr<AnalysisResult> r = Analyze(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->decode.has_value());
  const nlohmann::json j = AnalysisJson(in, *r);
  EXPECT_TRUE(j["decode"].is_null());  // absent, not zero
  // The batch takes TTFT alone: $3·2·0.41/3600 per 32 tokens.
  EXPECT_NEAR(r->cost->usd_per_million_output_tokens, 3.0 * 2 * 0.41 / 3600 / 32 * 1e6, 1e-9);
}

TEST(AnalyzeTest, RejectsBadInputNamingTheField) {
  struct Case {
    void (*mutate)(AnalysisInput&);
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](AnalysisInput& in) { in.batch = 0; }, "batch:"},
      {[](AnalysisInput& in) { in.devices = 0; }, "gpus:"},
      {[](AnalysisInput& in) { in.prompt_len = 0; }, "prompt-len:"},
      {[](AnalysisInput& in) { in.ttft_s = -1; }, "ttft-s:"},
      {[](AnalysisInput& in) { in.tpot_s = 0; }, "tpot-s:"},
      {[](AnalysisInput& in) {
         in.output_len = 1;  // keeps tpot: no decode step to time
       },
       "tpot-s:"},
      {[](AnalysisInput& in) { in.decode_activated_per_layer = 9; }, "decode-activated:"},
  };
  for (const Case& c : cases) {
    AnalysisInput in = MixtralInput();
    c.mutate(in);
    absl::StatusOr<AnalysisResult> r = Analyze(in);
    ASSERT_FALSE(r.ok()) << c.field;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StartsWith(r.status().message(), c.field)) << r.status();
  }
}

TEST(AnalyzeTest, MissingPeakIsAFailedPreconditionSayingWhichFlag) {
  AnalysisInput in = MixtralInput();
  in.hardware.peak_bandwidth_bytes_s = 0;  // like the generic CPU entry
  absl::StatusOr<AnalysisResult> r = Analyze(in);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("--peak-bandwidth-gb-s"), std::string::npos);
  in.peak_bandwidth_bytes_s = 1e11;
  EXPECT_TRUE(Analyze(in).ok());
}

TEST(AnalyzeTest, JsonHasTheDocumentedKeys) {
  const AnalysisInput in = MixtralInput();
  absl::StatusOr<AnalysisResult> r = Analyze(in);
  ASSERT_TRUE(r.ok());
  const nlohmann::json j = AnalysisJson(in, *r);
  for (const char* key : {"bytes", "flops", "s_mbu", "s_mfu", "dense_mbu", "breakdown"}) {
    EXPECT_TRUE(j["prefill"].contains(key)) << key;
  }
  for (const char* key : {"bytes_per_step", "flops_per_step", "s_mbu", "s_mfu",
                          "activated_experts_per_layer", "mean_context", "steps"}) {
    EXPECT_TRUE(j["decode"].contains(key)) << key;
  }
  EXPECT_EQ(j["decode"]["steps"], 255);
  EXPECT_EQ(j["inputs"]["batch"], 32);
  EXPECT_DOUBLE_EQ(j["inputs"]["ttft_s"].get<double>(), 0.41);
  EXPECT_DOUBLE_EQ(j["cost"]["usd_per_million_output_tokens"].get<double>(),
                   r->cost->usd_per_million_output_tokens);
  // The breakdown sums to the phase total.
  double sum = 0;
  for (const auto& [term, tc] : j["decode"]["breakdown"].items()) sum += tc["bytes"].get<double>();
  EXPECT_DOUBLE_EQ(sum, j["decode"]["bytes_per_step"].get<double>());
}

}  // namespace
}  // namespace moecap

namespace moecap {
namespace {

// Every built-in model on every built-in device: the calculator gives finite, positive figures
// (the generic CPU entry needs its peaks given, as `analyze` would ask).
TEST(AnalyzeCatalogTest, EveryModelOnEveryDevice) {
  absl::StatusOr<Catalog> catalog = Catalog::Builtin();
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  ASSERT_GE(catalog->models().size(), 12u);
  ASSERT_GE(catalog->hardware().size(), 9u);
  for (const ModelSpec& model : catalog->models()) {
    for (const HardwareSpec& hw : catalog->hardware()) {
      AnalysisInput in;
      in.model = model;
      in.hardware = hw;
      in.devices = 8;
      in.batch = 16;
      in.prompt_len = 1024;
      in.output_len = 128;
      in.dtype = Dtype::kBf16;
      in.ttft_s = 1.5;
      in.tpot_s = 0.05;
      if (hw.kind == DeviceKind::kCpu) {
        in.peak_bandwidth_bytes_s = 2e11;
        in.peak_flops = 4e12;
        in.price.usd_per_device_hour = 1.0;
      }
      absl::StatusOr<AnalysisResult> r = Analyze(in);
      ASSERT_TRUE(r.ok()) << model.name << " on " << hw.name << ": " << r.status();
      ASSERT_TRUE(r->decode.has_value());
      EXPECT_GT(r->decode->measured->s_mbu, 0) << model.name << " on " << hw.name;
      EXPECT_GT(r->prefill.measured->s_mfu, 0) << model.name << " on " << hw.name;
      // Sparse counting never exceeds dense counting.
      EXPECT_LE(r->decode->counts.bytes(), r->decode->dense_counts.bytes()) << model.name;
      ASSERT_TRUE(r->cost.has_value()) << model.name << " on " << hw.name;
      EXPECT_TRUE(std::isfinite(r->cost->usd_per_million_output_tokens));
    }
  }
}

}  // namespace
}  // namespace moecap
