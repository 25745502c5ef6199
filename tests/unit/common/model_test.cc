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

}  // namespace
}  // namespace moecap
