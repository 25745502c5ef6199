// Tests of the config.json reader (common/hf_config.h). Each family's published config.json
// (tests/fixtures/real/hf_configs/) gives the shape the model card and, where the builtin catalog
// has the model, the catalog entry give: the same fields and the same parameter counts, worked
// by hand in the comments (METRICS.md, "Parameters counted"). Variants of those files, changed
// one field at a time, check the layer layouts, windows and precisions the published files do not
// exercise, and the refusals, which name the origin and the field. ModelYaml's output reads back
// through ParseModelYaml to the same spec.
#include "common/hf_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/catalog.h"
#include "common/dtype.h"
#include "common/model.h"
#include "nlohmann/json.hpp"

namespace moecap {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using json = nlohmann::json;

constexpr char kHfConfigs[] = MOECAP_HF_CONFIGS;
constexpr char kOrigin[] = "config.json";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// The published config.json of `dir` (a folder of tests/fixtures/real/hf_configs/).
std::string ConfigText(const std::string& dir) {
  return ReadFile(std::string(kHfConfigs) + "/" + dir + "/config.json");
}
json ConfigJson(const std::string& dir) { return json::parse(ConfigText(dir)); }

ModelSpec FromText(const std::string& text) {
  absl::StatusOr<ModelSpec> m = ModelFromHfConfig(text, kOrigin);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : ModelSpec();
}
ModelSpec FromConfig(const std::string& dir) { return FromText(ConfigText(dir)); }
ModelSpec FromJson(const json& j) { return FromText(j.dump(2)); }

absl::Status RefusalOf(const json& j) { return ModelFromHfConfig(j.dump(2), kOrigin).status(); }
absl::Status RefusalOf(const std::string& text) {
  return ModelFromHfConfig(text, kOrigin).status();
}

const ModelSpec& Builtin(absl::string_view name) {
  static const Catalog* catalog = [] {
    absl::StatusOr<Catalog> c = Catalog::Builtin();
    EXPECT_TRUE(c.ok()) << c.status();
    return new Catalog(c.ok() ? *std::move(c) : Catalog());
  }();
  absl::StatusOr<const ModelSpec*> m = catalog->FindModel(name);
  EXPECT_TRUE(m.ok()) << m.status();
  static const ModelSpec empty;
  return m.ok() ? **m : empty;
}

// Every field but the names and the source; the attention fields of the spec's own kind.
void ExpectSameShape(const ModelSpec& a, const ModelSpec& b) {
  EXPECT_EQ(a.layers, b.layers);
  EXPECT_EQ(a.dense_layers, b.dense_layers);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.dense_ffn_size, b.dense_ffn_size);
  ASSERT_EQ(a.attention, b.attention);
  if (a.attention == AttentionKind::kGqa) {
    EXPECT_EQ(a.gqa.heads, b.gqa.heads);
    EXPECT_EQ(a.gqa.kv_heads, b.gqa.kv_heads);
    EXPECT_EQ(a.gqa.head_dim, b.gqa.head_dim);
  } else {
    EXPECT_EQ(a.mla.heads, b.mla.heads);
    EXPECT_EQ(a.mla.q_lora_rank, b.mla.q_lora_rank);
    EXPECT_EQ(a.mla.kv_lora_rank, b.mla.kv_lora_rank);
    EXPECT_EQ(a.mla.qk_nope_head_dim, b.mla.qk_nope_head_dim);
    EXPECT_EQ(a.mla.qk_rope_head_dim, b.mla.qk_rope_head_dim);
    EXPECT_EQ(a.mla.v_head_dim, b.mla.v_head_dim);
  }
  EXPECT_EQ(a.experts, b.experts);
  EXPECT_EQ(a.experts_per_token, b.experts_per_token);
  EXPECT_EQ(a.expert_ffn_size, b.expert_ffn_size);
  EXPECT_EQ(a.shared_experts, b.shared_experts);
  EXPECT_EQ(a.shared_expert_ffn_size, b.shared_expert_ffn_size);
  EXPECT_EQ(a.router_scoring, b.router_scoring);
  EXPECT_EQ(a.normalize_topk, b.normalize_topk);
  EXPECT_EQ(a.moe_layer_step, b.moe_layer_step);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.sliding_window_layers, b.sliding_window_layers);
  EXPECT_EQ(a.expert_dtype, b.expert_dtype);
  EXPECT_EQ(a.attention_dtype, b.attention_dtype);
  EXPECT_EQ(a.lm_head_dtype, b.lm_head_dtype);
}

void ExpectSameCounts(const ModelSpec& a, const ModelSpec& b) {
  EXPECT_EQ(AttentionParamsPerLayer(a), AttentionParamsPerLayer(b));
  EXPECT_EQ(RouterParamsPerLayer(a), RouterParamsPerLayer(b));
  EXPECT_EQ(ParamsPerExpert(a), ParamsPerExpert(b));
  EXPECT_EQ(SharedParamsPerLayer(a), SharedParamsPerLayer(b));
  EXPECT_EQ(DenseFfnParamsPerLayer(a), DenseFfnParamsPerLayer(b));
  EXPECT_EQ(LmHeadParams(a), LmHeadParams(b));
  EXPECT_EQ(KvElementsPerTokenPerLayer(a), KvElementsPerTokenPerLayer(b));
  EXPECT_EQ(TotalParams(a), TotalParams(b));
  EXPECT_EQ(ActiveParamsPerToken(a), ActiveParamsPerToken(b));
}

// The config-derived spec against the builtin catalog entry of the same model.
void ExpectMatchesBuiltin(const ModelSpec& from_config, absl::string_view builtin) {
  SCOPED_TRACE(builtin);
  ExpectSameShape(from_config, Builtin(builtin));
  ExpectSameCounts(from_config, Builtin(builtin));
}

void ExpectRefusal(const absl::Status& status, absl::string_view needle) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(StartsWith("config.json: "), HasSubstr(std::string(needle))));
}

// ---- The published files, family by family.

// Mixtral-8x7B: every layer MoE, intermediate_size is the expert's, no head_dim key.
TEST(HfConfigTest, Mixtral8x7b) {
  const ModelSpec m = FromConfig("Mixtral-8x7B-v0.1");
  EXPECT_EQ(m.name, "mixtralforcausallm");  // no _name_or_path: the architecture, lower-cased
  EXPECT_EQ(m.display_name, "MixtralForCausalLM");
  EXPECT_EQ(m.source, "config.json");
  EXPECT_EQ(m.layers, 32);
  EXPECT_EQ(m.dense_layers, 0);
  EXPECT_EQ(m.hidden_size, 4096);
  EXPECT_EQ(m.vocab_size, 32000);
  EXPECT_EQ(m.attention, AttentionKind::kGqa);
  EXPECT_EQ(m.gqa.heads, 32);
  EXPECT_EQ(m.gqa.kv_heads, 8);
  EXPECT_EQ(m.gqa.head_dim, 128);  // 4096 / 32
  EXPECT_EQ(m.experts, 8);
  EXPECT_EQ(m.experts_per_token, 2);
  EXPECT_EQ(m.expert_ffn_size, 14336);
  EXPECT_EQ(m.shared_experts, 0);
  EXPECT_EQ(m.router_scoring, RouterScoring::kSoftmax);
  EXPECT_TRUE(m.normalize_topk);
  EXPECT_EQ(m.sliding_window, 0);  // "sliding_window": null
  // torch_dtype bfloat16 is the load type, not a native precision.
  EXPECT_FALSE(m.expert_dtype.has_value());
  EXPECT_FALSE(m.attention_dtype.has_value());
  EXPECT_FALSE(m.lm_head_dtype.has_value());
  // P_attn = 4096·4096 + 2·4096·1024 + 4096·4096 = 41,943,040; P_expert = 3·4096·14336 =
  // 176,160,768; P_router = 4096·8 = 32,768; V·d = 32000·4096 = 131,072,000.
  // Total = 32·41,943,040 + 32·(32,768 + 8·176,160,768) + 2·131,072,000
  //       = 1,342,177,280 + 45,098,205,184 + 262,144,000 = 46,702,526,464 (card: 46.7B).
  EXPECT_EQ(AttentionParamsPerLayer(m), 41'943'040);
  EXPECT_EQ(ParamsPerExpert(m), 176'160'768);
  EXPECT_EQ(TotalParams(m), 46'702'526'464);
  // Active = 1,342,177,280 + 32·(32,768 + 2·176,160,768) + 262,144,000 = 12,879,659,008 (12.9B).
  EXPECT_EQ(ActiveParamsPerToken(m), 12'879'659'008);
  ExpectMatchesBuiltin(m, "mixtral-8x7b");
}

// Qwen3-30B-A3B: head_dim 128 given (n_h·d_h = 4096 > d), decoder_sparse_step 1 and
// mlp_only_layers [] (intermediate_size 6144 unused), no shared expert.
TEST(HfConfigTest, Qwen3_30bA3b) {
  const ModelSpec m = FromConfig("Qwen3-30B-A3B");
  EXPECT_EQ(m.layers, 48);
  EXPECT_EQ(m.dense_layers, 0);
  EXPECT_EQ(m.dense_ffn_size, 0);
  EXPECT_EQ(m.gqa.heads, 32);
  EXPECT_EQ(m.gqa.kv_heads, 4);
  EXPECT_EQ(m.gqa.head_dim, 128);
  EXPECT_EQ(m.experts, 128);
  EXPECT_EQ(m.experts_per_token, 8);
  EXPECT_EQ(m.expert_ffn_size, 768);
  EXPECT_EQ(m.shared_experts, 0);
  EXPECT_TRUE(m.normalize_topk);
  EXPECT_EQ(m.sliding_window, 0);  // use_sliding_window false
  // P_attn = 2048·4096 + 2·2048·512 + 4096·2048 = 18,874,368; P_expert = 3·2048·768 = 4,718,592.
  // Total = 48·18,874,368 + 48·(262,144 + 128·4,718,592) + 2·311,164,928 = 30,531,911,680 (30.5B).
  EXPECT_EQ(AttentionParamsPerLayer(m), 18'874'368);
  EXPECT_EQ(ParamsPerExpert(m), 4'718'592);
  EXPECT_EQ(TotalParams(m), 30'531'911'680);
  ExpectMatchesBuiltin(m, "qwen3-30b-a3b");
}

// Qwen2-57B-A14B: one shared expert of shared_expert_intermediate_size, no renormalisation.
TEST(HfConfigTest, Qwen2_57bA14b) {
  const ModelSpec m = FromConfig("Qwen2-57B-A14B");
  EXPECT_EQ(m.layers, 28);
  EXPECT_EQ(m.dense_layers, 0);
  EXPECT_EQ(m.gqa.heads, 28);
  EXPECT_EQ(m.gqa.kv_heads, 4);
  EXPECT_EQ(m.gqa.head_dim, 128);  // 3584 / 28: no head_dim key
  EXPECT_EQ(m.experts, 64);
  EXPECT_EQ(m.experts_per_token, 8);
  EXPECT_EQ(m.expert_ffn_size, 2560);
  EXPECT_EQ(m.shared_experts, 1);
  EXPECT_EQ(m.shared_expert_ffn_size, 20480);
  EXPECT_FALSE(m.normalize_topk);
  EXPECT_EQ(m.sliding_window, 0);  // sliding_window 131072 but use_sliding_window false
  // P_attn = 3584·3584 + 2·3584·512 + 3584·3584 = 29,360,128; P_router = 3584·64 = 229,376;
  // P_expert = 3·3584·2560 = 27,525,120; P_shared = 3·3584·20480 = 220,200,960;
  // V·d = 151936·3584 = 544,538,624.
  // Total = 28·29,360,128 + 28·(229,376 + 220,200,960 + 64·27,525,120) + 2·544,538,624
  //       = 822,083,584 + 55,497,064,448 + 1,089,077,248 = 57,408,225,280 (card: 57B).
  EXPECT_EQ(SharedParamsPerLayer(m), 220'200'960);
  EXPECT_EQ(TotalParams(m), 57'408'225'280);
  // Active = 822,083,584 + 28·(229,376 + 220,200,960 + 8·27,525,120) + 1,089,077,248
  //        = 14,248,837,120 (card: 14B).
  EXPECT_EQ(ActiveParamsPerToken(m), 14'248'837'120);
  ExpectMatchesBuiltin(m, "qwen2-57b-a14b");
}

// DeepSeek-V3: MLA with a query LoRA, first_k_dense_replace 3, sigmoid router, fp8 blocks.
TEST(HfConfigTest, DeepSeekV3) {
  const ModelSpec m = FromConfig("DeepSeek-V3");
  EXPECT_EQ(m.layers, 61);
  EXPECT_EQ(m.dense_layers, 3);
  EXPECT_EQ(m.dense_ffn_size, 18432);
  EXPECT_EQ(m.moe_layer_step, 1);
  EXPECT_EQ(m.attention, AttentionKind::kMla);
  EXPECT_EQ(m.mla.heads, 128);
  EXPECT_EQ(m.mla.q_lora_rank, 1536);
  EXPECT_EQ(m.mla.kv_lora_rank, 512);
  EXPECT_EQ(m.mla.qk_nope_head_dim, 128);
  EXPECT_EQ(m.mla.qk_rope_head_dim, 64);
  EXPECT_EQ(m.mla.v_head_dim, 128);
  EXPECT_EQ(m.experts, 256);
  EXPECT_EQ(m.experts_per_token, 8);
  EXPECT_EQ(m.expert_ffn_size, 2048);
  EXPECT_EQ(m.shared_experts, 1);
  EXPECT_EQ(m.shared_expert_ffn_size, 2048);
  EXPECT_EQ(m.router_scoring, RouterScoring::kSigmoid);
  EXPECT_TRUE(m.normalize_topk);
  EXPECT_EQ(m.expert_dtype, Dtype::kFp8Block128);
  EXPECT_EQ(m.attention_dtype, Dtype::kFp8Block128);
  EXPECT_EQ(m.lm_head_dtype, Dtype::kBf16);
  // P_attn = (7168·1536 + 1536·128·192) + 7168·576 + 512·128·256 + 128·128·7168 = 187,105,280.
  // Total = 61·187,105,280 + 3·396,361,728 + 58·(1,835,008 + 44,040,192 + 256·44,040,192)
  //         + 2·926,679,040 = 671,025,397,760 (card: 671B without the 14B MTP module).
  EXPECT_EQ(AttentionParamsPerLayer(m), 187'105'280);
  EXPECT_EQ(TotalParams(m), 671'025'397'760);
  EXPECT_EQ(KvElementsPerTokenPerLayer(m), 576);  // 512 + 64
  ExpectMatchesBuiltin(m, "deepseek-v3");
}

// Kimi-K2: DeepseekV3ForCausalLM (model_type kimi_k2) with 384 experts, 64 heads, one dense layer.
// Not in the builtin catalog: the counts are checked against the Kimi-K2 tech report (arXiv
// 2507.20534: 1.04T total, 32B activated).
TEST(HfConfigTest, KimiK2) {
  const ModelSpec m = FromConfig("Kimi-K2-Instruct");
  EXPECT_EQ(m.layers, 61);
  EXPECT_EQ(m.dense_layers, 1);
  EXPECT_EQ(m.dense_ffn_size, 18432);
  EXPECT_EQ(m.mla.heads, 64);
  EXPECT_EQ(m.mla.q_lora_rank, 1536);
  EXPECT_EQ(m.experts, 384);
  EXPECT_EQ(m.experts_per_token, 8);
  EXPECT_EQ(m.shared_experts, 1);
  EXPECT_EQ(m.router_scoring, RouterScoring::kSigmoid);
  EXPECT_EQ(m.expert_dtype, Dtype::kFp8Block128);
  EXPECT_EQ(m.lm_head_dtype, Dtype::kBf16);
  // d=7168, n_h=64: Q = 7168·1536 + 1536·64·192 = 11,010,048 + 18,874,368 = 29,884,416;
  //   kv_a = 7168·576 = 4,128,768; kv_b = 512·64·256 = 8,388,608; o = 64·128·7168 = 58,720,256;
  //   P_attn = 101,122,048.
  EXPECT_EQ(AttentionParamsPerLayer(m), 101'122'048);
  // P_router = 7168·384 = 2,752,512; P_expert = P_shared = 3·7168·2048 = 44,040,192;
  // P_dense = 3·7168·18432 = 396,361,728; V·d = 163840·7168 = 1,174,405,120.
  // Total = 61·101,122,048 + 396,361,728 + 60·(2,752,512 + 44,040,192 + 384·44,040,192)
  //         + 2·1,174,405,120
  //       = 6,168,444,928 + 396,361,728 + 1,017,493,585,920 + 2,348,810,240
  //       = 1,026,407,202,816 (report: 1.04T).
  EXPECT_EQ(TotalParams(m), 1'026'407'202'816);
  EXPECT_NEAR(static_cast<double>(TotalParams(m)) / 1.04e12, 1.0, 0.03);
  // Active = 6,168,444,928 + 396,361,728 + 60·(2,752,512 + 44,040,192 + 8·44,040,192)
  //          + 2,348,810,240 = 32,860,471,296; without the embedding (V·d), as DeepSeek counts,
  //          31,686,066,176 (report: 32B).
  EXPECT_EQ(ActiveParamsPerToken(m), 32'860'471'296);
  EXPECT_NEAR(static_cast<double>(ActiveParamsPerToken(m) - LmHeadParams(m)) / 32e9, 1.0, 0.03);
}

// gpt-oss-120b: head_dim 64, experts_per_token beside num_experts_per_tok, layer_types with 18
// sliding layers of window 128, mxfp4 experts.
TEST(HfConfigTest, GptOss120b) {
  const ModelSpec m = FromConfig("gpt-oss-120b");
  EXPECT_EQ(m.layers, 36);
  EXPECT_EQ(m.dense_layers, 0);
  EXPECT_EQ(m.gqa.heads, 64);
  EXPECT_EQ(m.gqa.kv_heads, 8);
  EXPECT_EQ(m.gqa.head_dim, 64);
  EXPECT_EQ(m.experts, 128);
  EXPECT_EQ(m.experts_per_token, 4);
  EXPECT_EQ(m.expert_ffn_size, 2880);
  EXPECT_TRUE(m.normalize_topk);
  EXPECT_EQ(m.sliding_window, 128);
  EXPECT_EQ(m.sliding_window_layers, 18);
  EXPECT_EQ(m.FullAttentionLayers(), 18);
  EXPECT_EQ(m.expert_dtype, Dtype::kMxfp4);
  EXPECT_EQ(m.attention_dtype, Dtype::kBf16);
  EXPECT_EQ(m.lm_head_dtype, Dtype::kBf16);
  // P_attn = 2880·4096 + 2·2880·512 + 4096·2880 = 26,542,080; P_expert = 3·2880·2880 =
  // 24,883,200; P_router = 2880·128 = 368,640; V·d = 201088·2880 = 579,133,440.
  // Total = 36·26,542,080 + 36·(368,640 + 128·24,883,200) + 2·579,133,440
  //       = 955,514,880 + 114,675,056,640 + 1,158,266,880 = 116,788,838,400 (card: 116.83B).
  EXPECT_EQ(TotalParams(m), 116'788'838'400);
  // Active without the embedding = 955,514,880 + 36·(368,640 + 4·24,883,200) + 579,133,440
  //   = 5,131,100,160 (card: 5.13B).
  EXPECT_EQ(ActiveParamsPerToken(m) - LmHeadParams(m), 5'131'100'160);
  ExpectMatchesBuiltin(m, "gpt-oss-120b");
}

// Llama-4-Scout: Llama4ForConditionalGeneration, fields under text_config; every layer MoE
// (interleave_moe_layer_step 1), one shared expert of intermediate_size, sigmoid top-1.
// Not in the builtin catalog: the model card says 109B total (with the vision encoder, which is
// not counted here), 17B active.
TEST(HfConfigTest, Llama4Scout) {
  const ModelSpec m = FromConfig("Llama-4-Scout-17B-16E-Instruct");
  EXPECT_EQ(m.layers, 48);
  EXPECT_EQ(m.dense_layers, 0);
  EXPECT_EQ(m.moe_layer_step, 1);
  EXPECT_EQ(m.hidden_size, 5120);
  EXPECT_EQ(m.vocab_size, 202048);
  EXPECT_EQ(m.gqa.heads, 40);
  EXPECT_EQ(m.gqa.kv_heads, 8);
  EXPECT_EQ(m.gqa.head_dim, 128);
  EXPECT_EQ(m.experts, 16);
  EXPECT_EQ(m.experts_per_token, 1);
  EXPECT_EQ(m.expert_ffn_size, 8192);
  EXPECT_EQ(m.shared_experts, 1);
  EXPECT_EQ(m.shared_expert_ffn_size, 8192);
  EXPECT_EQ(m.router_scoring, RouterScoring::kSigmoid);
  EXPECT_FALSE(m.normalize_topk);
  EXPECT_EQ(m.sliding_window, 0);  // chunked attention is not a sliding window
  // P_attn = 5120·5120 + 2·5120·1024 + 5120·5120 = 62,914,560; P_expert = P_shared =
  // 3·5120·8192 = 125,829,120; P_router = 5120·16 = 81,920; V·d = 202048·5120 = 1,034,485,760.
  // Total = 48·62,914,560 + 48·(81,920 + 125,829,120 + 16·125,829,120) + 2·1,034,485,760
  //       = 3,019,898,880 + 102,680,494,080 + 2,068,971,520 = 107,769,364,480 (card: 109B).
  EXPECT_EQ(TotalParams(m), 107'769'364'480);
  EXPECT_NEAR(static_cast<double>(TotalParams(m)) / 109e9, 1.0, 0.03);
  // Active = 3,019,898,880 + 48·(81,920 + 2·125,829,120) + 2,068,971,520 = 17,172,398,080 (17B).
  EXPECT_EQ(ActiveParamsPerToken(m), 17'172'398'080);
  EXPECT_NEAR(static_cast<double>(ActiveParamsPerToken(m)) / 17e9, 1.0, 0.03);
}

// Llama-4 interleaved: Scout's file with the two MoE-layout fields Maverick's differs in
// (interleave_moe_layer_step 2, num_local_experts 128): layers 1, 3, ..., 47 are MoE layers, the
// other 24 have a dense MLP of intermediate_size_mlp.
TEST(HfConfigTest, Llama4InterleavedMoeLayers) {
  json j = ConfigJson("Llama-4-Scout-17B-16E-Instruct");
  j["text_config"]["interleave_moe_layer_step"] = 2;
  j["text_config"]["num_local_experts"] = 128;
  const ModelSpec m = FromJson(j);
  EXPECT_EQ(m.moe_layer_step, 2);
  EXPECT_EQ(m.dense_layers, 24);  // 48 − 48/2
  EXPECT_EQ(m.MoeLayers(), 24);
  EXPECT_EQ(m.dense_ffn_size, 16384);
  // P_dense = 3·5120·16384 = 251,658,240; per MoE layer 5120·128 + 125,829,120 + 128·125,829,120
  // = 16,232,611,840. Total = 48·62,914,560 + 24·251,658,240 + 24·16,232,611,840
  // + 2·1,034,485,760 = 3,019,898,880 + 6,039,797,760 + 389,582,684,160 + 2,068,971,520
  // = 400,711,352,320 (Llama-4-Maverick's card: 400B total).
  EXPECT_EQ(TotalParams(m), 400'711'352'320);
  // An explicit moe_layers list wins over the step, as Llama4TextConfig has it.
  j["text_config"]["moe_layers"] = {1, 3, 5};
  const ModelSpec listed = FromJson(j);
  EXPECT_EQ(listed.dense_layers, 45);
  EXPECT_EQ(listed.moe_layer_step, 1);  // not every 2nd layer: kept as a count
}

// GLM-4.5: GQA with head_dim 128 (n_h·d_h = 12288 > d = 5120), DeepSeek-style MoE with 3 dense
// layers and a sigmoid router. Not in the builtin catalog: the card (zai-org/GLM-4.5) says 355B
// total and 32B active; the MTP layer (num_nextn_predict_layers 1) is not counted here.
TEST(HfConfigTest, AConfigWithoutItsNameIsNamedByItsFolder) {
  // GLM-4.5's published config.json has no _name_or_path (neither has a copy from the hub).
  const std::string text = ConfigText("GLM-4.5");
  EXPECT_EQ(ModelFromHfConfig(text, "dl/GLM-4.5/config.json")->display_name, "GLM-4.5");
  EXPECT_EQ(ModelFromHfConfig(text, "dl/GLM-4.5/config.json")->name, "glm-4.5");
  // Hugging Face's cache: models--<org>--<name>/snapshots/<commit>/config.json.
  EXPECT_EQ(ModelFromHfConfig(text,
                              "/root/.cache/huggingface/hub/models--zai-org--GLM-4.5/snapshots/"
                              "0123456789abcdef0123456789abcdef01234567/config.json")
                ->display_name,
            "zai-org/GLM-4.5");
  // Nothing to go by: the architecture names it.
  EXPECT_EQ(ModelFromHfConfig(text, "config.json")->name, "glm4moeforcausallm");
}

TEST(HfConfigTest, Glm45) {
  const ModelSpec m = FromConfig("GLM-4.5");
  EXPECT_EQ(m.layers, 92);
  EXPECT_EQ(m.dense_layers, 3);
  EXPECT_EQ(m.dense_ffn_size, 12288);
  EXPECT_EQ(m.gqa.heads, 96);
  EXPECT_EQ(m.gqa.kv_heads, 8);
  EXPECT_EQ(m.gqa.head_dim, 128);
  EXPECT_EQ(m.experts, 160);
  EXPECT_EQ(m.experts_per_token, 8);
  EXPECT_EQ(m.expert_ffn_size, 1536);
  EXPECT_EQ(m.shared_experts, 1);
  EXPECT_EQ(m.shared_expert_ffn_size, 1536);
  EXPECT_EQ(m.router_scoring, RouterScoring::kSigmoid);
  EXPECT_TRUE(m.normalize_topk);
  EXPECT_FALSE(m.expert_dtype.has_value());
  // P_attn = 5120·12288 + 2·5120·1024 + 12288·5120 = 136,314,880; P_dense = 3·5120·12288 =
  // 188,743,680; P_router = 5120·160 = 819,200; P_expert = P_shared = 3·5120·1536 = 23,592,960;
  // V·d = 151552·5120 = 775,946,240.
  // Total = 92·136,314,880 + 3·188,743,680 + 89·(819,200 + 23,592,960 + 160·23,592,960)
  //         + 2·775,946,240
  //       = 12,540,968,960 + 566,231,040 + 338,136,432,640 + 1,551,892,480
  //       = 352,795,525,120 (card: 355B).
  EXPECT_EQ(AttentionParamsPerLayer(m), 136'314'880);
  EXPECT_EQ(TotalParams(m), 352'795'525'120);
  EXPECT_NEAR(static_cast<double>(TotalParams(m)) / 355e9, 1.0, 0.03);
  // Active = 12,540,968,960 + 566,231,040 + 89·(819,200 + 23,592,960 + 8·23,592,960)
  //          + 1,551,892,480 = 33,629,962,240; without the embedding 32,854,016,000 (card: 32B).
  EXPECT_EQ(ActiveParamsPerToken(m), 33'629'962'240);
  EXPECT_NEAR(static_cast<double>(ActiveParamsPerToken(m) - LmHeadParams(m)) / 32e9, 1.0, 0.03);
}

// OLMoE-1B-7B: intermediate_size is the expert's, QK-norm (not counted), no renormalisation.
TEST(HfConfigTest, Olmoe1b7b) {
  const ModelSpec m = FromConfig("OLMoE-1B-7B-0924");
  EXPECT_EQ(m.layers, 16);
  EXPECT_EQ(m.gqa.heads, 16);
  EXPECT_EQ(m.gqa.kv_heads, 16);
  EXPECT_EQ(m.gqa.head_dim, 128);
  EXPECT_EQ(m.experts, 64);
  EXPECT_EQ(m.experts_per_token, 8);
  EXPECT_EQ(m.expert_ffn_size, 1024);
  EXPECT_FALSE(m.normalize_topk);
  // P_attn = 4·2048·2048 = 16,777,216; P_expert = 3·2048·1024 = 6,291,456; V·d = 50304·2048 =
  // 103,022,592. Total = 16·16,777,216 + 16·(131,072 + 64·6,291,456) + 2·103,022,592
  // = 268,435,456 + 6,444,548,096 + 206,045,184 = 6,919,028,736 (card: 6.9B).
  EXPECT_EQ(TotalParams(m), 6'919'028'736);
  // Active = 268,435,456 + 16·(131,072 + 8·6,291,456) + 206,045,184 = 1,281,884,160 (1.3B).
  EXPECT_EQ(ActiveParamsPerToken(m), 1'281'884'160);
  ExpectMatchesBuiltin(m, "olmoe-1b-7b");
}

// ---- Fields the published files leave at their defaults.

// DeepSeek-V2-Lite's fields (its config.json, as the catalog entry quotes it): q_lora_rank null,
// scoring_func softmax, norm_topk_prob false, two shared experts.
TEST(HfConfigTest, DeepSeekV2LiteQueryWithoutLora) {
  const json j = {
      {"architectures", {"DeepseekV2ForCausalLM"}},
      {"model_type", "deepseek_v2"},
      {"hidden_size", 2048},
      {"num_hidden_layers", 27},
      {"first_k_dense_replace", 1},
      {"intermediate_size", 10944},
      {"num_attention_heads", 16},
      {"num_key_value_heads", 16},
      {"q_lora_rank", nullptr},
      {"kv_lora_rank", 512},
      {"qk_nope_head_dim", 128},
      {"qk_rope_head_dim", 64},
      {"v_head_dim", 128},
      {"n_routed_experts", 64},
      {"num_experts_per_tok", 6},
      {"moe_intermediate_size", 1408},
      {"n_shared_experts", 2},
      {"moe_layer_freq", 1},
      {"scoring_func", "softmax"},
      {"norm_topk_prob", false},
      {"topk_method", "greedy"},
      {"vocab_size", 102400},
      {"torch_dtype", "bfloat16"},
  };
  const ModelSpec m = FromJson(j);
  EXPECT_EQ(m.mla.q_lora_rank, 0);
  // Q without a LoRA = d·n_h·(qk_nope + qk_rope) = 2048·16·192 = 6,291,456; + 2048·576 +
  // 512·16·256 + 16·128·2048 = 6,291,456 + 1,179,648 + 2,097,152 + 4,194,304 = 13,762,560.
  EXPECT_EQ(AttentionParamsPerLayer(m), 13'762'560);
  // Total = 27·13,762,560 + 3·2048·10944 + 26·(2048·64 + 2·8,650,752 + 64·8,650,752)
  //         + 2·102400·2048 = 371,589,120 + 67,239,936 + 14,848,098,304 + 419,430,400
  //       = 15,706,357,760 (card: 15.7B).
  EXPECT_EQ(TotalParams(m), 15'706'357'760);
  ExpectMatchesBuiltin(m, "deepseek-v2-lite");
  // The V2 remote code's defaults when the router keys are absent: softmax, no renormalisation.
  json bare = j;
  bare.erase("scoring_func");
  bare.erase("norm_topk_prob");
  const ModelSpec defaults = FromJson(bare);
  EXPECT_EQ(defaults.router_scoring, RouterScoring::kSoftmax);
  EXPECT_FALSE(defaults.normalize_topk);
}

TEST(HfConfigTest, QwenDenseLayers) {
  json j = ConfigJson("Qwen3-30B-A3B");
  j["mlp_only_layers"] = {0, 1};
  const ModelSpec listed = FromJson(j);
  EXPECT_EQ(listed.dense_layers, 2);
  EXPECT_EQ(listed.moe_layer_step, 1);
  EXPECT_EQ(listed.dense_ffn_size, 6144);  // intermediate_size
  // P_dense = 3·2048·6144 = 37,748,736.
  EXPECT_EQ(DenseFfnParamsPerLayer(listed), 37'748'736);

  j["mlp_only_layers"] = json::array();
  j["decoder_sparse_step"] = 2;
  const ModelSpec stepped = FromJson(j);
  EXPECT_EQ(stepped.moe_layer_step, 2);
  EXPECT_EQ(stepped.dense_layers, 24);
  EXPECT_TRUE(ValidateModel(stepped).ok());
}

TEST(HfConfigTest, SlidingWindows) {
  // gpt-oss without layer_types: transformers' default alternates, sliding first.
  json oss = ConfigJson("gpt-oss-120b");
  oss.erase("layer_types");
  EXPECT_EQ(FromJson(oss).sliding_window_layers, 18);
  // No window: no sliding layer either.
  oss["sliding_window"] = nullptr;
  EXPECT_EQ(FromJson(oss).sliding_window, 0);
  EXPECT_EQ(FromJson(oss).sliding_window_layers, 0);
  // Mixtral with a Mistral-style window: every layer.
  json mixtral = ConfigJson("Mixtral-8x7B-v0.1");
  mixtral["sliding_window"] = 4096;
  const ModelSpec m = FromJson(mixtral);
  EXPECT_EQ(m.sliding_window, 4096);
  EXPECT_EQ(m.sliding_window_layers, 32);
  // Qwen with use_sliding_window and an explicit layer_types.
  json qwen = ConfigJson("Qwen3-30B-A3B");
  qwen["use_sliding_window"] = true;
  qwen["sliding_window"] = 4096;
  std::vector<std::string> types(48, "full_attention");
  types[0] = types[1] = "sliding_attention";
  qwen["layer_types"] = types;
  EXPECT_EQ(FromJson(qwen).sliding_window_layers, 2);
}

TEST(HfConfigTest, PrecisionsComeFromQuantizationConfigOnly) {
  // fp8 without blocks: one scale per tensor or channel.
  json qwen = ConfigJson("Qwen3-30B-A3B");
  qwen["quantization_config"] = {{"quant_method", "fp8"}, {"activation_scheme", "dynamic"}};
  ModelSpec m = FromJson(qwen);
  EXPECT_EQ(m.expert_dtype, Dtype::kFp8);
  EXPECT_EQ(m.attention_dtype, Dtype::kFp8);
  EXPECT_EQ(m.lm_head_dtype, Dtype::kBf16);
  // Qwen3-30B-A3B-FP8's quantization_config: 128×128 blocks.
  qwen["quantization_config"]["weight_block_size"] = {128, 128};
  EXPECT_EQ(FromJson(qwen).expert_dtype, Dtype::kFp8Block128);
  // A torch_dtype alone says nothing about the checkpoint.
  json mixtral = ConfigJson("Mixtral-8x7B-v0.1");
  mixtral["torch_dtype"] = "float32";
  EXPECT_FALSE(FromJson(mixtral).expert_dtype.has_value());
}

TEST(HfConfigTest, NameFromNameOrPath) {
  json j = ConfigJson("Mixtral-8x7B-v0.1");
  j["_name_or_path"] = "mistralai/Mixtral-8x7B-v0.1";
  const ModelSpec m = FromJson(j);
  EXPECT_EQ(m.name, "mistralai/mixtral-8x7b-v0.1");
  EXPECT_EQ(m.display_name, "mistralai/Mixtral-8x7B-v0.1");
}

TEST(HfConfigTest, Utf8BomIsSkipped) {
  const ModelSpec m = FromText("\xEF\xBB\xBF" + ConfigText("OLMoE-1B-7B-0924"));
  EXPECT_EQ(m.experts, 64);
}

// ---- ModelYaml.

void ExpectRoundTrip(const ModelSpec& m) {
  SCOPED_TRACE(m.name);
  const std::string yaml = ModelYaml(m);
  absl::StatusOr<ModelSpec> back = ParseModelYaml(yaml, "roundtrip.yaml");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << yaml;
  EXPECT_EQ(back->name, m.name);
  EXPECT_EQ(back->display_name, m.display_name);
  EXPECT_EQ(back->aliases, m.aliases);
  EXPECT_EQ(back->source, m.source);
  ExpectSameShape(*back, m);
  EXPECT_EQ(ModelYaml(*back), yaml);
}

TEST(ModelYamlTest, ConfigsRoundTripThroughTheCatalogParser) {
  for (const char* dir :
       {"Mixtral-8x7B-v0.1", "Qwen3-30B-A3B", "Qwen2-57B-A14B", "DeepSeek-V3", "Kimi-K2-Instruct",
        "gpt-oss-120b", "Llama-4-Scout-17B-16E-Instruct", "GLM-4.5", "OLMoE-1B-7B-0924"}) {
    ExpectRoundTrip(FromConfig(dir));
  }
  json j = ConfigJson("Llama-4-Scout-17B-16E-Instruct");
  j["text_config"]["interleave_moe_layer_step"] = 2;
  ExpectRoundTrip(FromJson(j));  // moe.layer_step
}

TEST(ModelYamlTest, BuiltinEntriesRoundTrip) {
  absl::StatusOr<Catalog> catalog = Catalog::Builtin();
  ASSERT_TRUE(catalog.ok()) << catalog.status();
  for (const ModelSpec& m : catalog->models()) ExpectRoundTrip(m);
}

TEST(ModelYamlTest, OptionalKeysOnlyWhenSet) {
  const std::string mixtral = ModelYaml(FromConfig("Mixtral-8x7B-v0.1"));
  EXPECT_THAT(mixtral, Not(HasSubstr("precision")));
  EXPECT_THAT(mixtral, Not(HasSubstr("sliding_window")));
  EXPECT_THAT(mixtral, Not(HasSubstr("layer_step")));
  const std::string oss = ModelYaml(FromConfig("gpt-oss-120b"));
  EXPECT_THAT(oss, HasSubstr("sliding_window: 128"));
  EXPECT_THAT(oss, HasSubstr("sliding_window_layers: 18"));
  EXPECT_THAT(oss, HasSubstr("experts: mxfp4"));
}

TEST(ModelYamlTest, NamesThatYamlWouldMisreadAreQuoted) {
  for (const char* name : {"null", "true", "~", "8", "a: b", "#x", "- y", "[z]", "'q\"", "x\ty"}) {
    ModelSpec m = FromConfig("OLMoE-1B-7B-0924");
    m.name = NormalizeName(name);
    m.display_name = name;
    m.source = name;
    ExpectRoundTrip(m);
  }
}

// ---- Refusals: InvalidArgument, the origin first, then the field or the reason and the way out.

TEST(HfConfigRefusalTest, NotJson) {
  ExpectRefusal(RefusalOf(std::string("{\"architectures\": [")), "not JSON");
  ExpectRefusal(RefusalOf(std::string("")), "not JSON");
  // A catalog entry given where a config.json is expected.
  ExpectRefusal(RefusalOf(std::string("name: toy\nlayers: 2\n")), "not JSON");
}

TEST(HfConfigRefusalTest, NotAModelConfig) {
  ExpectRefusal(RefusalOf(json::array({1, 2})), "not a model config");
  // tokenizer_config.json and generation_config.json have neither architectures nor model_type.
  const absl::Status s = RefusalOf(json{{"bos_token_id", 1}, {"eos_token_id", 2}});
  ExpectRefusal(s, "neither 'architectures' nor 'model_type'");
  EXPECT_THAT(std::string(s.message()), HasSubstr("config.json from its Hugging Face repository"));
  ExpectRefusal(RefusalOf(json{{"architectures", "MixtralForCausalLM"}}),
                "field 'architectures': expected a list of strings");
}

TEST(HfConfigRefusalTest, DenseArchitecture) {
  const json llama = {{"architectures", {"LlamaForCausalLM"}},
                      {"model_type", "llama"},
                      {"hidden_size", 4096},
                      {"intermediate_size", 14336},
                      {"num_hidden_layers", 32},
                      {"vocab_size", 128256}};
  ExpectRefusal(RefusalOf(llama), "'LlamaForCausalLM' has no experts: moecap measures MoE models");
  // A known MoE family whose config has no experts.
  json qwen = ConfigJson("Qwen3-30B-A3B");
  qwen["num_experts"] = 0;
  ExpectRefusal(RefusalOf(qwen), "'Qwen3MoeForCausalLM' has no experts (num_experts is 0)");
  json deepseek = ConfigJson("DeepSeek-V3");
  deepseek["first_k_dense_replace"] = 61;
  ExpectRefusal(RefusalOf(deepseek), "has no experts in any of its 61 layers");
}

TEST(HfConfigRefusalTest, UnknownMoeArchitecture) {
  const json dbrx = {{"architectures", {"DbrxForCausalLM"}},
                     {"model_type", "dbrx"},
                     {"d_model", 6144},
                     {"ffn_config", {{"moe_num_experts", 16}, {"moe_top_k", 4}}}};
  const absl::Status s = RefusalOf(dbrx);
  ExpectRefusal(s, "unknown MoE architecture 'DbrxForCausalLM'");
  EXPECT_THAT(std::string(s.message()),
              AllOf(HasSubstr("MixtralForCausalLM"), HasSubstr("GptOssForCausalLM"),
                    HasSubstr("Llama4ForConditionalGeneration"), HasSubstr("docs/catalog.md"),
                    HasSubstr("moecapctl models")));
  // "Moe" in the name is enough.
  ExpectRefusal(RefusalOf(json{{"architectures", {"PhimoeForCausalLM"}}}),
                "unknown MoE architecture 'PhimoeForCausalLM'");
}

TEST(HfConfigRefusalTest, FieldsByName) {
  json mixtral = ConfigJson("Mixtral-8x7B-v0.1");
  mixtral["num_experts_per_tok"] = "2";
  ExpectRefusal(RefusalOf(mixtral), "field 'num_experts_per_tok': expected an integer, got \"2\"");
  mixtral["num_experts_per_tok"] = 2.0;
  ExpectRefusal(RefusalOf(mixtral), "field 'num_experts_per_tok': expected an integer, got 2.0");
  mixtral["num_experts_per_tok"] = 9;
  ExpectRefusal(RefusalOf(mixtral), "field 'num_experts_per_tok': 9 exceeds num_local_experts (8)");
  mixtral["num_experts_per_tok"] = -1;
  ExpectRefusal(RefusalOf(mixtral), "field 'num_experts_per_tok': expected a non-negative integer");
  mixtral["num_experts_per_tok"] = 2;
  mixtral.erase("num_local_experts");
  ExpectRefusal(RefusalOf(mixtral),
                "field 'num_local_experts': required for MixtralForCausalLM but missing");

  json qwen = ConfigJson("Qwen3-30B-A3B");
  qwen["num_key_value_heads"] = 5;
  ExpectRefusal(RefusalOf(qwen),
                "field 'num_key_value_heads': 5 does not divide num_attention_heads (32)");
  qwen["num_key_value_heads"] = 4;
  qwen["hidden_size"] = 0;
  ExpectRefusal(RefusalOf(qwen), "field 'hidden_size': must be positive, got 0");
  qwen["hidden_size"] = 4294967296;
  ExpectRefusal(RefusalOf(qwen), "field 'hidden_size': 4294967296 is out of range");
  qwen["hidden_size"] = 2048;
  qwen["mlp_only_layers"] = {48};
  ExpectRefusal(RefusalOf(qwen), "field 'mlp_only_layers': layer 48 is not between 0 and 47");
  qwen["mlp_only_layers"] = json::array();
  qwen["norm_topk_prob"] = "yes";
  ExpectRefusal(RefusalOf(qwen), "field 'norm_topk_prob': expected true or false");
  qwen["norm_topk_prob"] = true;
  qwen["use_sliding_window"] = true;
  ExpectRefusal(RefusalOf(qwen), "field 'use_sliding_window': true, but without layer_types");

  // Nested fields by their path.
  json llama4 = ConfigJson("Llama-4-Scout-17B-16E-Instruct");
  llama4["text_config"].erase("num_local_experts");
  ExpectRefusal(RefusalOf(llama4),
                "field 'text_config.num_local_experts': required for "
                "Llama4ForConditionalGeneration but missing");
  llama4["text_config"] = 3;
  ExpectRefusal(RefusalOf(llama4), "field 'text_config': expected an object, got 3");

  json deepseek = ConfigJson("DeepSeek-V3");
  deepseek["kv_lora_rank"] = nullptr;
  ExpectRefusal(RefusalOf(deepseek),
                "field 'kv_lora_rank': required for DeepseekV3ForCausalLM but null");
  deepseek["kv_lora_rank"] = 512;
  deepseek["scoring_func"] = "sparsemax";
  ExpectRefusal(RefusalOf(deepseek),
                "field 'scoring_func': unknown scoring function \"sparsemax\"");

  json oss = ConfigJson("gpt-oss-120b");
  oss["experts_per_token"] = 8;
  ExpectRefusal(RefusalOf(oss), "field 'experts_per_token': 8 disagrees with num_experts_per_tok");
  oss["experts_per_token"] = 4;
  oss["layer_types"] = {"sliding_attention"};
  ExpectRefusal(RefusalOf(oss), "field 'layer_types': has 1 entries, one per layer of 36");
}

TEST(HfConfigRefusalTest, QuantizationItCannotMap) {
  json qwen = ConfigJson("Qwen3-30B-A3B");
  qwen["quantization_config"] = {{"quant_method", "gptq"}, {"bits", 4}, {"group_size", 128}};
  const absl::Status s = RefusalOf(qwen);
  ExpectRefusal(s, "field 'quantization_config.quant_method': \"gptq\" is not read");
  EXPECT_THAT(std::string(s.message()), HasSubstr("precision:"));
  qwen["quantization_config"] = {{"quant_method", "fp8"}, {"weight_block_size", {64, 64}}};
  ExpectRefusal(RefusalOf(qwen), "field 'quantization_config.weight_block_size': [64, 64]");
  qwen["quantization_config"] = {{"bits", 4}};
  ExpectRefusal(RefusalOf(qwen), "field 'quantization_config.quant_method': required");
}

}  // namespace
}  // namespace moecap
