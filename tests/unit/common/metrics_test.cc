// Worked examples of METRICS.md's formulas. Every expected number is computed by hand in the
// comment above it; the shapes are in test_models.h.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/unit/common/test_models.h"

namespace moecap {
namespace {

using ::moecap::testing::DeepSeekV3;
using ::moecap::testing::Mixtral8x7b;
using ::moecap::testing::Qwen3_30bA3b;
using ::moecap::testing::ToyModel;

TEST(ParamsTest, ToyModel) {
  const ModelSpec m = ToyModel();
  // P_attn = d·n_h·d_h + 2·d·n_kv·d_h + n_h·d_h·d = 64 + 64 + 64.
  EXPECT_EQ(AttentionParamsPerLayer(m), 192);
  EXPECT_EQ(RouterParamsPerLayer(m), 32);       // d·E = 8·4
  EXPECT_EQ(ParamsPerExpert(m), 96);            // 3·d·f_e = 3·8·4
  EXPECT_EQ(LmHeadParams(m), 80);               // V·d
  EXPECT_EQ(KvElementsPerTokenPerLayer(m), 8);  // 2·n_kv·d_h
}

TEST(ParamsTest, DeepSeekV3Mla) {
  const ModelSpec m = DeepSeekV3();
  // Q = d·q_lora + q_lora·n_h·(nope + rope) = 7168·1536 + 1536·128·192 = 11,010,048 + 37,748,736
  // KV down = d·(kv_lora + rope) = 7168·576 = 4,128,768
  // KV up = kv_lora·n_h·(nope + v) = 512·128·256 = 16,777,216
  // O = n_h·v·d = 128·128·7168 = 117,440,512; total 187,105,280.
  EXPECT_EQ(AttentionParamsPerLayer(m), 187'105'280);
  EXPECT_EQ(SharedParamsPerLayer(m), 44'040'192);     // 1·3·7168·2048
  EXPECT_EQ(DenseFfnParamsPerLayer(m), 396'361'728);  // 3·7168·18432
  EXPECT_EQ(KvElementsPerTokenPerLayer(m), 576);      // kv_lora + rope
  EXPECT_EQ(m.QueryKeyHeadDim(), 192);
  EXPECT_EQ(m.ValueHeadDim(), 128);
}

TEST(ParamsTest, MlaWithoutQueryCompression) {
  ModelSpec m = DeepSeekV3();
  m.mla.q_lora_rank = 0;
  // Q = d·n_h·(nope + rope) = 7168·128·192 = 176,160,768 replaces 48,758,784.
  EXPECT_EQ(AttentionParamsPerLayer(m), 187'105'280 - 48'758'784 + 176'160'768);
}

TEST(ActivatedExpertsTest, UniformExpectation) {
  const ModelSpec m = Mixtral8x7b();
  // One token activates exactly k = 2 experts: 8·(1 − 0.75) = 2.
  EXPECT_DOUBLE_EQ(ExpectedActivatedExperts(m, 1), 2.0);
  // 32 tokens: 8·(1 − 0.75^32) = 8·(1 − 1.0045e-4) = 7.99919638.
  EXPECT_NEAR(ExpectedActivatedExperts(m, 32), 7.99919638, 1e-8);
  EXPECT_DOUBLE_EQ(ExpectedActivatedExperts(m, 0), 0.0);
  // Σ_l over 32 MoE layers, one token: 32·2.
  EXPECT_DOUBLE_EQ(ExpectedActivatedExpertsSum(m, 1), 64.0);
}

TEST(ActivatedExpertsTest, FromHistogramCountsNonZeroExperts) {
  // Layer 0 hits experts 0 and 3; layer 1 hits all four; layer 2 none.
  EXPECT_DOUBLE_EQ(ActivatedExpertsSum({{5, 0, 0, 1}, {1, 1, 1, 1}, {0, 0, 0, 0}}), 6.0);
}

TEST(CountTest, ToyDecodeStepMatchesMetricsDoc) {
  const ModelSpec m = ToyModel();
  const Counts c =
      CountMeanDecodeStep(m, MakePrecision(Dtype::kBf16), /*batch=*/2,
                          /*prompt_len=*/3, /*output_len=*/2, ExpectedActivatedExpertsSum(m, 2));
  // A(2) = 3 per layer, Σ = 6. W = 2·[2·192 + 2·32 + 6·96 + 80] = 2208.
  // KV read = p_kv·(B·c̄ = 2·4)·L·kv = 2·8·2·8 = 256. Bytes 2464.
  EXPECT_DOUBLE_EQ(c.bytes(), 2464.0);
  EXPECT_DOUBLE_EQ(c[Term::kKvCache].bytes, 256.0);
  EXPECT_DOUBLE_EQ(c[Term::kRoutedExperts].bytes, 1152.0);  // 2·6·96
  // F_lin = 2·[384 + 2·(32 + 2·96) + 80] = 1824 per token; scores per token
  // L·2·c̄·n_h·(d_qk + d_v) = 2·2·4·2·8 = 256. Total 2·(1824 + 256) = 4160.
  EXPECT_DOUBLE_EQ(c.flops(), 4160.0);
  EXPECT_DOUBLE_EQ(c[Term::kAttentionScores].flops, 512.0);
}

TEST(CountTest, ToyDenseCountsEveryExpert) {
  const ModelSpec m = ToyModel();
  const Counts c = CountMeanDecodeStep(m, MakePrecision(Dtype::kBf16), 2, 3, 2,
                                       /*activated_experts_sum=*/0, Counting::kDense);
  // A_l = E = 4: W = 2·[384 + 2·(32 + 4·96) + 80] = 2·1296 = 2592, + KV 256 = 2848.
  EXPECT_DOUBLE_EQ(c.bytes(), 2848.0);
  // k = E: F_lin = 2·1296 = 2592 per token; 2·2592 + 512 = 5696.
  EXPECT_DOUBLE_EQ(c.flops(), 5696.0);
}

TEST(CountTest, ToyChunkedPrefillWithCachedTokens) {
  const ModelSpec m = ToyModel();
  // Sequence 1 adds 2 tokens on top of 3 cached; sequence 2 is a fresh 1-token prompt.
  const PrefillPass pass = PrefillPass::FromSequences(
      {{.new_tokens = 2, .cached_tokens = 3}, {.new_tokens = 1, .cached_tokens = 0}},
      /*activated_experts_sum=*/5);
  EXPECT_DOUBLE_EQ(pass.new_tokens, 3.0);
  EXPECT_DOUBLE_EQ(pass.cached_tokens, 3.0);
  // Σ n·h + n(n+1)/2 = (2·3 + 3) + (0 + 1) = 10 query-key pairs.
  EXPECT_DOUBLE_EQ(pass.score_pairs, 10.0);
  const Counts c = CountPrefillPass(m, MakePrecision(Dtype::kBf16), pass);
  // W = 2·[384 + 2·32 + 5·96 + 80] = 2016; KV = 2·(3 + 3)·2·8 = 192. Bytes 2208.
  EXPECT_DOUBLE_EQ(c.bytes(), 2208.0);
  // F_tok = 2·[384 + 2·(32 + 2·96)] = 1664 per token, F_lm = 2·80 = 160 per completing prompt
  // (both complete: b_done = 2); scores L·2·n_h·2·d_h·10 = 2·32·10 = 640.
  // F = 3·1664 + 2·160 + 640 = 4992 + 320 + 640 = 5952.
  EXPECT_DOUBLE_EQ(c.flops(), 5952.0);
  EXPECT_DOUBLE_EQ(c[Term::kLmHead].flops, 320.0);
}

TEST(CountTest, LogitsOnlyForPromptsThatComplete) {
  const ModelSpec m = ToyModel();
  // The same pass, but sequence 1's chunk is not its prompt's last: b_done = 1.
  const PrefillPass pass =
      PrefillPass::FromSequences({{.new_tokens = 2, .cached_tokens = 3, .completes = false},
                                  {.new_tokens = 1, .cached_tokens = 0}},
                                 5);
  EXPECT_DOUBLE_EQ(pass.completed_sequences, 1.0);
  const Counts c = CountPrefillPass(m, MakePrecision(Dtype::kBf16), pass);
  // 5952 − 160 = 5792.
  EXPECT_DOUBLE_EQ(c[Term::kLmHead].flops, 160.0);
  EXPECT_DOUBLE_EQ(c.flops(), 5792.0);
}

TEST(CountTest, ToyPrefillMatchesMetricsDocV2) {
  const ModelSpec m = ToyModel();
  // METRICS.md v2's worked example: B = 2 fresh prompts of P = 3, T = 6, A(6) = 3.9375.
  const Counts c =
      CountPrefillStep(m, MakePrecision(Dtype::kBf16), 2, 3, ExpectedActivatedExpertsSum(m, 6));
  // W = 2·[384 + 2·(32 + 3.9375·96) + 80] = 2·1284 = 2568; KV written 2·6·2·8 = 192.
  EXPECT_DOUBLE_EQ(c.bytes(), 2760.0);
  // 6·1664 + 2·160 + L·att·Σ n(n+1)/2 = 9984 + 320 + 2·32·(6 + 6) = 11072.
  EXPECT_DOUBLE_EQ(c.flops(), 11072.0);
  EXPECT_DOUBLE_EQ(c[Term::kAttentionScores].flops, 768.0);
}

TEST(CountTest, FreshPrefillSharesTokensEqually) {
  // 2 sequences, 8 tokens: 4 each, 4·5/2 = 10 pairs each.
  const PrefillPass pass = PrefillPass::Fresh(2, 8, 0);
  EXPECT_DOUBLE_EQ(pass.score_pairs, 20.0);
  EXPECT_DOUBLE_EQ(pass.cached_tokens, 0.0);
}

TEST(CountTest, MixtralDecodeBatchOne) {
  const ModelSpec m = Mixtral8x7b();
  // B=1, P=512, O=256, bf16. A(1) = k = 2 per layer, Σ = 64.
  const Counts c = CountMeanDecodeStep(m, MakePrecision(Dtype::kBf16), 1, 512, 256, 64);
  // P_attn = 4096·4096 + 2·4096·1024 + 4096·4096 = 41,943,040; P_router = 32,768;
  // P_expert = 3·4096·14336 = 176,160,768; LM head 32000·4096 = 131,072,000.
  // W/p_w = 32·41,943,040 + 32·32,768 + 64·176,160,768 + 131,072,000 = 12,748,587,008;
  // W = 25,497,174,016. KV: c̄ = 512 + 128 = 640; 2·640·32·2048 = 83,886,080.
  EXPECT_DOUBLE_EQ(c.bytes(), 25'581'060'096.0);
  // With B=1 and A=k the linear FLOPs equal 2·W/p_w = 25,497,174,016; scores
  // 32·2·640·32·(128 + 128) = 335,544,320.
  EXPECT_DOUBLE_EQ(c.flops(), 25'832'718'336.0);
  EXPECT_DOUBLE_EQ(c[Term::kAttentionScores].flops, 335'544'320.0);
}

TEST(CountTest, DeepSeekV3PrefillFp8WeightsBf16Cache) {
  const ModelSpec m = DeepSeekV3();
  // B=2 fresh prompts of P=4 (T=8), fp8 weights (p_w=1), bf16 cache (p_kv=2), measured 64
  // activated experts in each of the 58 MoE layers: Σ = 3712.
  const Counts c = CountPrefillStep(m, MakePrecision(Dtype::kFp8, Dtype::kBf16), 2, 4, 3712);
  // W = 61·187,105,280 + 3·396,361,728 + 58·(1,835,008 + 44,040,192) + 3712·44,040,192
  //     + 926,679,040 = 11,413,422,080 + 1,189,085,184 + 2,660,761,600 + 163,477,192,704
  //     + 926,679,040 = 179,667,140,608. KV written: 2·8·61·576 = 562,176.
  EXPECT_DOUBLE_EQ(c.bytes(), 179'667'702'784.0);
  EXPECT_DOUBLE_EQ(c[Term::kDenseFfn].bytes, 1'189'085'184.0);
  EXPECT_DOUBLE_EQ(c[Term::kSharedExperts].bytes, 58.0 * 44'040'192);
  // F_tok = 2·[11,413,422,080 + 1,189,085,184 + 58·(1,835,008 + 44,040,192 + 8·44,040,192)]
  //   = 2·35,697,917,952 = 71,395,835,904; ×8 tokens = 571,166,687,232. Logits for the 2
  //   completing prompts: 2·2·926,679,040 = 3,706,716,160. Scores, MLA prefill in the expanded
  //   form: 61·2·128·(128 + 64 + 128)·(2·(4·5/2)) = 99,942,400.
  EXPECT_DOUBLE_EQ(c.flops(), 574'973'345'792.0);
  EXPECT_DOUBLE_EQ(c[Term::kAttentionScores].flops, 99'942'400.0);
}

TEST(CountTest, MlaDecodeScoresInTheAbsorbedForm) {
  const ModelSpec m = DeepSeekV3();
  // Decode: 2·n_h·(2·kv_lora + rope) = 2·128·(1024 + 64) = 278,528 per pair and layer; prefill
  // keeps the expanded 2·128·(128 + 64 + 128) = 81,920 (3.4× fewer).
  EXPECT_DOUBLE_EQ(ScoreFlopsPerPair(m, PassKind::kDecode), 278'528.0);
  EXPECT_DOUBLE_EQ(ScoreFlopsPerPair(m, PassKind::kPrefill), 81'920.0);
  const Counts c = CountDecodePass(m, MakePrecision(Dtype::kBf16), DecodePass{2, 1000, 100});
  // 61 layers · 278,528 · C = 1000.
  EXPECT_DOUBLE_EQ(c[Term::kAttentionScores].flops, 61.0 * 278'528 * 1000);
  // GQA is unchanged: 2·n_h·2·d_h = 2·2·2·4 = 32 on the toy model, both phases.
  EXPECT_DOUBLE_EQ(ScoreFlopsPerPair(ToyModel(), PassKind::kDecode), 32.0);
  EXPECT_DOUBLE_EQ(ScoreFlopsPerPair(ToyModel(), PassKind::kPrefill), 32.0);
}

TEST(CountTest, SlidingWindowLayersClipTheContext) {
  ModelSpec m = ToyModel();
  m.sliding_window = 4;
  m.sliding_window_layers = 1;  // one of the two layers
  const Precision p = MakePrecision(Dtype::kBf16);
  // Decode: 2 sequences, C = 14 (7 each). Full layer reads 14 entries, the windowed one
  // 2·min(7, 4) = 8: KV = 2·8·(14 + 8) = 352; scores 32·(14 + 8) = 704.
  const Counts d = CountDecodePass(m, p, DecodePass{2, 14, 6});
  EXPECT_DOUBLE_EQ(d[Term::kKvCache].bytes, 352.0);
  EXPECT_DOUBLE_EQ(d[Term::kAttentionScores].flops, 704.0);
  // Known contexts 3 and 11: the windowed layer reads 3 + 4 = 7.
  const Counts known = CountDecodePass(m, p, DecodePass{2, 14, 6, /*windowed_context_sum=*/7});
  EXPECT_DOUBLE_EQ(known[Term::kKvCache].bytes, 2.0 * 8 * (14 + 7));
  // Prefill of one fresh 6-token prompt: pairs 21 in the full layer; in the window
  // Σ_j min(j, 4) = 1 + 2 + 3 + 4 + 4 + 4 = 18. KV entries 6 and min(6, 4) = 4.
  const PrefillPass fresh = PrefillPass::Fresh(1, 6, 3, /*window=*/4);
  EXPECT_DOUBLE_EQ(fresh.windowed_score_pairs, 18.0);
  EXPECT_DOUBLE_EQ(fresh.windowed_kv_tokens, 4.0);
  const Counts pre = CountPrefillPass(m, p, fresh);
  EXPECT_DOUBLE_EQ(pre[Term::kAttentionScores].flops, 32.0 * (21 + 18));
  EXPECT_DOUBLE_EQ(pre[Term::kKvCache].bytes, 2.0 * 8 * (6 + 4));
  // 2 new tokens after 3 cached, window 4: queries at 4 and 5 see min(4, 4) + min(5, 4) = 8.
  EXPECT_DOUBLE_EQ(WindowedScorePairs(2, 3, 4), 8.0);
  EXPECT_DOUBLE_EQ(WindowedScorePairs(3, 5, 4), 12.0);  // all past the window
  // The mean decode step, P = 2, O = 5: steps s = 1..4 attend min(2 + s, 4) = 3, 4, 4, 4,
  // mean 3.75; the full layer c̄ = 2 + 2.5 = 4.5. B = 2: KV = 2·8·2·(4.5 + 3.75) = 264.
  const Counts step = CountMeanDecodeStep(m, p, 2, 2, 5, 6);
  EXPECT_DOUBLE_EQ(step[Term::kKvCache].bytes, 264.0);
}

TEST(CountTest, MixedPassReadsTheWeightsOnce) {
  const ModelSpec m = ToyModel();
  const Precision p = MakePrecision(Dtype::kBf16);
  const DecodePass decode{2, 8, 0};
  const PrefillPass prefill = PrefillPass::Fresh(1, 3, 0);
  const Counts mixed = CountMixedPass(m, p, decode, prefill, /*activated_experts_sum=*/6);
  const Counts d = CountDecodePass(m, p, DecodePass{2, 8, 6});
  const Counts f = CountPrefillPass(m, p, PrefillPass::Fresh(1, 3, 6));
  // Weights (W(6) = 2208 bytes) once; KV and FLOPs of both parts.
  EXPECT_DOUBLE_EQ(mixed.bytes(), d.bytes() + f.bytes() - 2208.0);
  EXPECT_DOUBLE_EQ(mixed.flops(), d.flops() + f.flops());
  EXPECT_DOUBLE_EQ(mixed[Term::kKvCache].bytes, d[Term::kKvCache].bytes + f[Term::kKvCache].bytes);
}

TEST(PrecisionTest, PartsCountWithTheirOwnBytes) {
  ModelSpec m = ToyModel();
  m.expert_dtype = Dtype::kMxfp4;  // as gpt-oss's checkpoint
  const PartDtypes dtypes = ResolvePrecisions(m, Dtype::kBf16);
  EXPECT_EQ(dtypes.experts, Dtype::kMxfp4);
  EXPECT_EQ(dtypes.attention, Dtype::kBf16);
  EXPECT_EQ(dtypes.compute, Dtype::kBf16);  // mxfp4 weights, bf16 activations
  const Counts c = CountDecodePass(m, BytesOf(dtypes), DecodePass{1, 4, 2});
  // Experts at 0.5 + 1/32 = 0.53125 bytes: 2 experts·96 = 192 params -> 102 bytes; attention,
  // router and LM head at 2: 2·(384 + 64 + 80) = 1056.
  EXPECT_DOUBLE_EQ(c[Term::kRoutedExperts].bytes, 102.0);
  EXPECT_DOUBLE_EQ(c[Term::kAttention].bytes + c[Term::kRouter].bytes + c[Term::kLmHead].bytes,
                   1056.0);
}

TEST(CountTest, Qwen3MeasuredDecodePass) {
  const ModelSpec m = Qwen3_30bA3b();
  // 3 sequences with contexts 100, 200, 301 (C = 601), 20 experts hit in each of 48 layers.
  const Counts c =
      CountDecodePass(m, MakePrecision(Dtype::kFp16),
                      DecodePass{.sequences = 3, .context_sum = 601, .activated_experts_sum = 960});
  // P_attn = 2048·4096 + 2·2048·512 + 4096·2048 = 18,874,368; P_router = 262,144;
  // P_expert = 3·2048·768 = 4,718,592; LM 151936·2048 = 311,164,928.
  // W = 2·[905,969,664 + 12,582,912 + 960·4,718,592 + 311,164,928] = 11,519,131,648.
  // KV = 2·601·48·1024 = 59,080,704.
  EXPECT_DOUBLE_EQ(c.bytes(), 11'578'212'352.0);
  // F_lin/token = 2·[905,969,664 + 48·(262,144 + 8·4,718,592) + 311,164,928] = 6,083,313,664;
  // ×3 = 18,249,940,992; scores 48·2·601·32·256 = 472,645,632.
  EXPECT_DOUBLE_EQ(c.flops(), 18'722'586'624.0);
}

TEST(CountTest, StepFormulasEqualPassFormulas) {
  // METRICS.md: with b = B and C = B·c̄ the pass formulas equal the step formulas.
  const ModelSpec m = Qwen3_30bA3b();
  const Precision p = MakePrecision(Dtype::kBf16);
  const Counts step = CountMeanDecodeStep(m, p, 4, 100, 50, 500);
  const Counts pass = CountDecodePass(m, p, DecodePass{4, 4 * 125.0, 500});
  EXPECT_DOUBLE_EQ(step.bytes(), pass.bytes());
  EXPECT_DOUBLE_EQ(step.flops(), pass.flops());
}

TEST(CountTest, MoeBlocksAreTheMoePartOfTheModelCount) {
  const ModelSpec m = DeepSeekV3();
  const Precision p = MakePrecision(Dtype::kBf16);
  const Counts model = CountDecodePass(m, p, DecodePass{1, 10, 100});
  const Counts blocks = CountMoeBlocks(m, p, static_cast<double>(m.MoeLayers()), 1, 100);
  for (Term t : {Term::kRouter, Term::kSharedExperts, Term::kRoutedExperts}) {
    EXPECT_DOUBLE_EQ(model[t].bytes, blocks[t].bytes) << TermName(t);
    EXPECT_DOUBLE_EQ(model[t].flops, blocks[t].flops) << TermName(t);
  }
  EXPECT_DOUBLE_EQ(blocks[Term::kAttention].bytes, 0.0);
}

TEST(CountTest, CountsAddTermByTerm) {
  const ModelSpec m = ToyModel();
  const Precision p = MakePrecision(Dtype::kBf16);
  Counts sum = CountDecodePass(m, p, DecodePass{1, 4, 4});
  sum += CountDecodePass(m, p, DecodePass{1, 5, 2});
  // KV: 2·(4 + 5)·2·8 = 288; routed experts: 2·(4 + 2)·96 = 1152.
  EXPECT_DOUBLE_EQ(sum[Term::kKvCache].bytes, 288.0);
  EXPECT_DOUBLE_EQ(sum[Term::kRoutedExperts].bytes, 1152.0);
}

TEST(UtilizationTest, RatiosAndRoofline) {
  // 25,581,060,096 bytes in 10 ms on one 3.35 TB/s device: 25.58 GB / 33.5 GB = 0.76361...
  EXPECT_NEAR(Utilization(25'581'060'096.0, 0.010, 1, 3.35e12), 0.763613734, 1e-9);
  // Two devices halve it.
  EXPECT_NEAR(Utilization(25'581'060'096.0, 0.010, 2, 3.35e12), 0.381806867, 1e-9);
  // Roofline: bytes 6.7e9 over 2·3.35e12 = 1 ms; flops 1e12 over 2·1e15 = 0.5 ms -> 1 ms.
  EXPECT_DOUBLE_EQ(RooflineSeconds(6.7e9, 1e12, 2, 3.35e12, 1e15), 1e-3);
  EXPECT_DOUBLE_EQ(RooflineSeconds(6.7e9, 4e12, 2, 3.35e12, 1e15), 2e-3);
}

TEST(TermTest, NamesAreMetricsDocNames) {
  std::vector<std::string> names;
  for (Term t : kAllTerms) names.emplace_back(TermName(t));
  EXPECT_EQ(names, (std::vector<std::string>{"attention", "router", "dense_ffn", "shared_experts",
                                             "routed_experts", "lm_head", "kv_cache",
                                             "attention_scores"}));
}

// A workload's decoder stack of one toy layer (d = 8, n_h = 2, n_kv = 1, d_h = 4, fp32):
// P_attn = 8·8 + 2·8·4 + 8·8 = 192, 2·n_kv·d_h = 8 KV elements per token, 2·n_h·2·d_h = 32 score
// FLOPs per pair.
TEST(AttentionStepTest, ToyStackByHand) {
  const ModelSpec stack = StackModel(ToyModel(), 1);
  EXPECT_EQ(stack.layers, 1);
  const Precision fp32 = MakePrecision(Dtype::kFp32);
  // Decode: 3 sequences at context 5 (4 cached + the new token).
  Counts c = CountDecoderStep(stack, fp32, PassKind::kDecode, 3, 1, 4, /*lm_head=*/false);
  EXPECT_DOUBLE_EQ(c[Term::kAttention].bytes, 192 * 4);        // the weights, once
  EXPECT_DOUBLE_EQ(c[Term::kAttention].flops, 2 * 192 * 3);    // 3 tokens
  EXPECT_DOUBLE_EQ(c[Term::kKvCache].bytes, 4 * 8 * 15);       // 15 entries read
  EXPECT_DOUBLE_EQ(c[Term::kAttentionScores].flops, 32 * 15);  // one query over 5 keys, × 3
  for (Term t : {Term::kRouter, Term::kRoutedExperts, Term::kSharedExperts, Term::kLmHead}) {
    EXPECT_EQ(c[t].bytes, 0) << TermName(t);
    EXPECT_EQ(c[t].flops, 0) << TermName(t);
  }
  // Prefill: 2 fresh sequences of 3 tokens: 6 entries written, 2·(1 + 2 + 3) = 12 causal pairs.
  c = CountDecoderStep(stack, fp32, PassKind::kPrefill, 2, 3, 0, /*lm_head=*/false);
  EXPECT_DOUBLE_EQ(c[Term::kAttention].bytes, 192 * 4);
  EXPECT_DOUBLE_EQ(c[Term::kAttention].flops, 2 * 192 * 6);
  EXPECT_DOUBLE_EQ(c[Term::kKvCache].bytes, 4 * 8 * 6);
  EXPECT_DOUBLE_EQ(c[Term::kAttentionScores].flops, 32 * 12);
  // The same step of the whole stack as analyze counts it, less the LM head, is the sum.
  Counts whole = CountPrefillStep(stack, fp32, 2, 3, 0);
  for (Term t : {Term::kAttention, Term::kKvCache, Term::kAttentionScores}) {
    EXPECT_DOUBLE_EQ(whole[t].bytes, c[t].bytes) << TermName(t);
    EXPECT_DOUBLE_EQ(whole[t].flops, c[t].flops) << TermName(t);
  }
  // With the LM head: V·d = 80 weights read once, 2·80 FLOPs for each of the 2 last positions
  // (decode: each of the 3 sequences' one token).
  c = CountDecoderStep(stack, fp32, PassKind::kPrefill, 2, 3, 0, /*lm_head=*/true);
  EXPECT_DOUBLE_EQ(c[Term::kLmHead].bytes, 80 * 4);
  EXPECT_DOUBLE_EQ(c[Term::kLmHead].flops, 2 * 80 * 2);
  c = CountDecoderStep(stack, fp32, PassKind::kDecode, 3, 1, 4, /*lm_head=*/true);
  EXPECT_DOUBLE_EQ(c[Term::kLmHead].flops, 2 * 80 * 3);
}

// Dense layers sit where the model has them: DeepSeek's first ones, Llama-4's interleaved ones.
TEST(AttentionStepTest, DenseLayersOfAStackInTheModelsOrder) {
  ModelSpec first = ToyModel();
  first.layers = 61;
  first.dense_layers = 3;  // DeepSeek-V3: first_k_dense_replace 3
  using V = std::vector<bool>;
  EXPECT_EQ(StackDenseLayers(first, 2, 1), (V{true, false, false}));
  EXPECT_EQ(StackDenseLayers(first, 1, 3), (V{true, true, true, false}));
  EXPECT_EQ(StackDenseLayers(first, 2, 0), (V{false, false}));
  ModelSpec interleaved = ToyModel();
  interleaved.layers = 48;
  interleaved.dense_layers = 24;
  interleaved.moe_layer_step = 2;  // Llama-4 Maverick: layers 1, 3, 5, ... are MoE
  EXPECT_TRUE(IsDenseModelLayer(interleaved, 0));
  EXPECT_FALSE(IsDenseModelLayer(interleaved, 1));
  EXPECT_EQ(StackDenseLayers(interleaved, 2, 2), (V{true, false, true, false}));
  EXPECT_EQ(StackDenseLayers(interleaved, 2, 1), (V{true, false, false}));
  // A stack deeper than the model (toy: 2 layers, none dense) ends with its MoE layers.
  EXPECT_EQ(StackDenseLayers(ToyModel(), 3, 0), (V{false, false, false}));
}

// One MoE and one dense toy layer (f_dense = 6): P_dense = 3·8·6 = 144 weights read once, 2·144
// FLOPs per token; attention and the KV cache over both layers.
TEST(AttentionStepTest, DenseLayerOfAToyStackByHand) {
  ModelSpec m = ToyModel();
  m.layers = 3;
  m.dense_layers = 1;
  m.dense_ffn_size = 6;
  const ModelSpec stack = StackModel(m, 1, 1);
  EXPECT_EQ(stack.layers, 2);
  EXPECT_EQ(stack.dense_layers, 1);
  EXPECT_EQ(stack.MoeLayers(), 1);
  const Precision fp32 = MakePrecision(Dtype::kFp32);
  // Decode: 3 sequences at context 5.
  const Counts c = CountDecoderStep(stack, fp32, PassKind::kDecode, 3, 1, 4, /*lm_head=*/false);
  EXPECT_DOUBLE_EQ(c[Term::kDenseFfn].bytes, 144 * 4);
  EXPECT_DOUBLE_EQ(c[Term::kDenseFfn].flops, 2 * 144 * 3);
  EXPECT_DOUBLE_EQ(c[Term::kAttention].bytes, 2 * 192 * 4);
  EXPECT_DOUBLE_EQ(c[Term::kKvCache].bytes, 2 * 4 * 8 * 15);
  // The same terms as the whole stack's decode step counts them.
  const Counts whole = CountMeanDecodeStep(stack, fp32, 3, 4, 2, 0);
  for (Term t : {Term::kAttention, Term::kDenseFfn, Term::kKvCache, Term::kAttentionScores}) {
    EXPECT_DOUBLE_EQ(whole[t].bytes, c[t].bytes) << TermName(t);
    EXPECT_DOUBLE_EQ(whole[t].flops, c[t].flops) << TermName(t);
  }
}

// Sliding layers spread over the model's layers, and a stack keeps those among its first layers.
TEST(AttentionStepTest, SlidingLayersOfAStack) {
  ModelSpec m = ToyModel();
  m.layers = 24;
  m.sliding_window = 128;
  m.sliding_window_layers = 12;       // gpt-oss: every other layer
  EXPECT_TRUE(IsSlidingLayer(m, 0));  // gpt-oss's layer_types: the even layers slide
  EXPECT_FALSE(IsSlidingLayer(m, 1));
  EXPECT_TRUE(IsSlidingLayer(m, 2));
  EXPECT_FALSE(IsSlidingLayer(m, 23));
  EXPECT_EQ(StackModel(m, 1).sliding_window_layers, 1);
  m.sliding_window_layers = 0;
  EXPECT_EQ(StackModel(m, 1).sliding_window, 0);  // no sliding layer in the stack: no window
  m.sliding_window_layers = 12;
  EXPECT_EQ(StackModel(m, 4).sliding_window_layers, 2);
  EXPECT_EQ(StackModel(m, 4).sliding_window, 128);
  // A window of 4 over one layer of 2 sequences at context 6: each reads 4 entries, not 6.
  m.layers = 1;
  m.sliding_window = 4;
  m.sliding_window_layers = 1;
  const Counts c =
      CountDecoderStep(StackModel(m, 1), MakePrecision(Dtype::kFp32), PassKind::kDecode, 2, 1, 5,
                       /*lm_head=*/false);
  EXPECT_DOUBLE_EQ(c[Term::kKvCache].bytes, 4 * 8 * 2 * 4);
  EXPECT_EQ(DecodeStepContext(128, 33), 144);
}

}  // namespace
}  // namespace moecap
