// Model shape validation and dtype parsing.
#include "common/model.h"

#include <gtest/gtest.h>

#include "common/dtype.h"
#include "tests/unit/common/test_models.h"

namespace moecap {
namespace {

TEST(ValidateModelTest, CatalogShapesAreValid) {
  EXPECT_TRUE(ValidateModel(testing::ToyModel()).ok());
  EXPECT_TRUE(ValidateModel(testing::Mixtral8x7b()).ok());
  EXPECT_TRUE(ValidateModel(testing::DeepSeekV3()).ok());
  EXPECT_TRUE(ValidateModel(testing::Qwen3_30bA3b()).ok());
}

TEST(ValidateModelTest, ErrorsNameTheField) {
  struct Case {
    void (*mutate)(ModelSpec&);
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](ModelSpec& m) { m.experts_per_token = 9; }, "'moe.experts_per_token'"},
      {[](ModelSpec& m) { m.layers = 0; }, "'layers'"},
      {[](ModelSpec& m) {
         m.dense_layers = 32;
         m.dense_ffn_size = 1;
       },
       "'dense_layers'"},
      {[](ModelSpec& m) { m.gqa.kv_heads = 5; }, "'attention.kv_heads'"},
      {[](ModelSpec& m) { m.dense_layers = 1; }, "'dense_ffn_size'"},
      {[](ModelSpec& m) { m.shared_experts = 1; }, "'moe.shared_expert_ffn_size'"},
      {[](ModelSpec& m) { m.hidden_size = -4; }, "'hidden_size'"},
  };
  for (const Case& c : cases) {
    ModelSpec m = testing::Mixtral8x7b();
    c.mutate(m);
    const absl::Status s = ValidateModel(m);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << s;
  }
}

TEST(ModelTest, TotalAndActiveParams) {
  const ModelSpec m = testing::ToyModel();
  // Total: 2·192 + 2·(32 + 4·96) + 2·80 (LM head and embedding) = 384 + 832 + 160 = 1376.
  EXPECT_EQ(TotalParams(m), 1376);
  // Active: 384 + 2·(32 + 2·96) + 160 = 992.
  EXPECT_EQ(ActiveParamsPerToken(m), 992);
}

TEST(DtypeTest, ParsesNamesCaseInsensitively) {
  EXPECT_EQ(*ParseDtype("BF16"), Dtype::kBf16);
  EXPECT_EQ(*ParseDtype("bfloat16"), Dtype::kBf16);
  EXPECT_EQ(*ParseDtype("fp8_e4m3"), Dtype::kFp8);
  EXPECT_EQ(*ParseDtype("float32"), Dtype::kFp32);
  EXPECT_DOUBLE_EQ(DtypeBytes(Dtype::kFp8), 1.0);
  EXPECT_DOUBLE_EQ(DtypeBytes(Dtype::kFp16), 2.0);
  const absl::StatusOr<Dtype> bad = ParseDtype("int3");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'int3'"), std::string::npos);
}

TEST(DtypeTest, BlockScaledFormatsCountTheirScales) {
  // METRICS.md v2: fp8 with a 128×128 fp32 scale: 1 + 4/16384; int4 with an fp16 scale and zero
  // per 128: 0.5 + 4/128; mxfp4, one 8-bit scale per 32: 0.5 + 1/32; nvfp4, one fp8 scale per
  // 16: 0.5 + 1/16.
  EXPECT_DOUBLE_EQ(DtypeBytes(Dtype::kFp8Block128), 1.000244140625);
  EXPECT_DOUBLE_EQ(DtypeBytes(Dtype::kInt8), 1.0);
  EXPECT_DOUBLE_EQ(DtypeBytes(Dtype::kInt4Group128), 0.53125);
  EXPECT_DOUBLE_EQ(DtypeBytes(Dtype::kMxfp4), 0.53125);
  EXPECT_DOUBLE_EQ(DtypeBytes(Dtype::kNvfp4), 0.5625);
  EXPECT_EQ(*ParseDtype("FP8-Block128"), Dtype::kFp8Block128);
  EXPECT_EQ(*ParseDtype("gptq"), Dtype::kInt4Group128);
  EXPECT_EQ(*ParseDtype("MXFP4"), Dtype::kMxfp4);
  for (Dtype d :
       {Dtype::kFp8Block128, Dtype::kInt8, Dtype::kInt4Group128, Dtype::kMxfp4, Dtype::kNvfp4}) {
    EXPECT_EQ(*ParseDtype(DtypeName(d)), d) << DtypeName(d);
  }
}

TEST(DtypeTest, ComputeAndKvDefaults) {
  EXPECT_EQ(DefaultComputeDtype(Dtype::kFp8Block128), Dtype::kFp8);
  EXPECT_EQ(DefaultComputeDtype(Dtype::kMxfp4), Dtype::kBf16);
  EXPECT_EQ(DefaultComputeDtype(Dtype::kInt4Group128), Dtype::kBf16);
  EXPECT_EQ(DefaultComputeDtype(Dtype::kFp16), Dtype::kFp16);
  // vLLM and SGLang keep the KV cache in bf16 for fp8 (or narrower) runs.
  EXPECT_EQ(DefaultKvDtype(Dtype::kFp8), Dtype::kBf16);
  EXPECT_EQ(DefaultKvDtype(Dtype::kMxfp4), Dtype::kBf16);
  EXPECT_EQ(DefaultKvDtype(Dtype::kFp32), Dtype::kFp32);
  EXPECT_EQ(DefaultKvDtype(Dtype::kFp16), Dtype::kFp16);
}

}  // namespace
}  // namespace moecap
