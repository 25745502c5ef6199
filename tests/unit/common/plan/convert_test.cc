// Tests of the API <-> metric core conversions (common/plan/convert.h).
#include "common/plan/convert.h"

#include <gtest/gtest.h>

#include "common/catalog.h"

namespace moecap {
namespace {

TEST(ConvertTest, TermCountsUseMetricsNames) {
  // Every term of METRICS.md has a field of exactly its name, and values land in it.
  Counts counts;
  for (int i = 0; i < kNumTerms; ++i) {
    counts[kAllTerms[i]].bytes = 10.0 * (i + 1);
    counts[kAllTerms[i]].flops = 1000.0 * (i + 1);
  }
  const v1::TermCounts proto = TermCountsToProto(counts);
  const auto* descriptor = v1::TermCounts::descriptor();
  for (int i = 0; i < kNumTerms; ++i) {
    const std::string name(TermName(kAllTerms[i]));
    const auto* field = descriptor->FindFieldByName(name);
    ASSERT_NE(field, nullptr) << name;
    const auto& term =
        static_cast<const v1::TermCount&>(proto.GetReflection()->GetMessage(proto, field));
    EXPECT_EQ(term.bytes(), 10.0 * (i + 1)) << name;
    EXPECT_EQ(term.flops(), 1000.0 * (i + 1)) << name;
  }
  // Totals: 10·(1 + ... + 8) = 360 bytes, 1000·36 = 36000 FLOP.
  EXPECT_EQ(proto.total_bytes(), 360);
  EXPECT_EQ(proto.total_flops(), 36000);
  const Counts back = TermCountsFromProto(proto);
  for (Term t : kAllTerms) {
    EXPECT_EQ(back[t].bytes, counts[t].bytes);
    EXPECT_EQ(back[t].flops, counts[t].flops);
  }
}

TEST(ConvertTest, Dtypes) {
  for (Dtype d : {Dtype::kFp32, Dtype::kBf16, Dtype::kFp16, Dtype::kFp8}) {
    EXPECT_EQ(DtypeFromProto(DtypeToProto(d)), d);
  }
  EXPECT_EQ(DtypeFromProto(v1::DTYPE_UNSPECIFIED), std::nullopt);
}

TEST(ConvertTest, ModelSpecRoundTripsForEveryCatalogModel) {
  absl::StatusOr<Catalog> catalog = Catalog::Builtin();
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  ASSERT_FALSE(catalog->models().empty());
  for (const ModelSpec& m : catalog->models()) {
    SCOPED_TRACE(m.name);
    absl::StatusOr<ModelSpec> back = ModelSpecFromProto(ModelSpecToProto(m));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->name, m.name);
    EXPECT_EQ(back->attention, m.attention);
    EXPECT_EQ(back->experts, m.experts);
    EXPECT_EQ(back->experts_per_token, m.experts_per_token);
    EXPECT_EQ(back->router_scoring, m.router_scoring);
    EXPECT_EQ(back->normalize_topk, m.normalize_topk);
    // Every counted parameter agrees, so every count made from it does.
    EXPECT_EQ(TotalParams(*back), TotalParams(m));
    EXPECT_EQ(ActiveParamsPerToken(*back), ActiveParamsPerToken(m));
    EXPECT_EQ(KvElementsPerTokenPerLayer(*back), KvElementsPerTokenPerLayer(m));
  }
}

TEST(ConvertTest, ModelSpecDefaultsAndErrors) {
  v1::ModelSpec p;
  p.set_name("Toy MHA");
  p.set_layers(2);
  p.set_hidden_size(8);
  p.set_vocab_size(10);
  p.mutable_attention()->set_kind(v1::ATTENTION_KIND_MHA);
  p.mutable_attention()->set_heads(2);
  p.mutable_attention()->set_head_dim(4);
  p.mutable_moe()->set_experts(4);
  p.mutable_moe()->set_experts_per_token(2);
  p.mutable_moe()->set_expert_ffn_size(4);
  absl::StatusOr<ModelSpec> m = ModelSpecFromProto(p);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "toy-mha");  // normalised like catalog names
  EXPECT_EQ(m->gqa.kv_heads, 2);  // MHA: one KV head per query head
  EXPECT_TRUE(m->normalize_topk);
  EXPECT_EQ(m->router_scoring, RouterScoring::kSoftmax);

  p.mutable_moe()->set_experts_per_token(5);  // k > E
  EXPECT_FALSE(ModelSpecFromProto(p).ok());
}

}  // namespace
}  // namespace moecap
