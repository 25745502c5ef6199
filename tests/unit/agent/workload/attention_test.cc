// The decoder layer's attention against its double-precision reference: GQA with and without a
// sliding window, and MLA with and without a query LoRA (decode in the absorbed form, prefill in
// the expanded one, both against the reference's absorbed algebra); decode over a cache and causal
// prefill over more than one query block, for every rank of 1, 2 and 4 (data-parallel attention:
// each rank's sequences, with their own caches, give the rows the whole batch's reference gives
// them).
#include "agent/workload/attention.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/compute/cpu_backend.h"
#include "agent/workload/weights.h"

namespace moecap {
namespace {

ModelSpec TinyGqa(int64_t window) {
  ModelSpec m;
  m.name = "tiny-gqa";
  m.layers = 2;
  m.hidden_size = 48;
  m.vocab_size = 10;
  m.gqa = {.heads = 4, .kv_heads = 2, .head_dim = 12};
  m.experts = 4;
  m.experts_per_token = 2;
  m.expert_ffn_size = 16;
  if (window > 0) {
    m.sliding_window = window;
    m.sliding_window_layers = 1;  // layer 0 of 2 slides
  }
  return m;
}

// DeepSeek-V3's MLA shape, narrowed: 3 heads, latent 20, nope 8, rope 6, values 10; with a query
// LoRA of 12 or none (DeepSeek-V2-Lite has none).
ModelSpec TinyMla(int64_t q_lora_rank) {
  ModelSpec m = TinyGqa(0);
  m.name = "tiny-mla";
  m.attention = AttentionKind::kMla;
  m.gqa = {};
  m.mla = {.heads = 3,
           .q_lora_rank = q_lora_rank,
           .kv_lora_rank = 20,
           .qk_nope_head_dim = 8,
           .qk_rope_head_dim = 6,
           .v_head_dim = 10};
  return m;
}

struct Case {
  ModelSpec model;
  ServingPhase phase;
};

// Runs both layers of every rank's block and compares each row with the reference of the whole
// batch; returns the largest error relative to the reference's largest magnitude.
double RelativeError(const ModelSpec& m, ServingPhase phase, int world) {
  WorkloadConfig c;
  c.model = m;
  c.layer = LayerKind::kDecoder;
  c.prompt_len = 70;  // prefill: two query blocks; decode: context 70 + 8/2 = 74
  c.output_len = 8;
  const int64_t batch = 5;
  const uint64_t seed = 7;
  CpuBackend backend(1);
  absl::StatusOr<AttentionWeights> weights =
      AttentionWeights::Generate(backend, m, 2, Dtype::kFp32, seed);
  EXPECT_TRUE(weights.ok()) << weights.status();
  const int64_t d = m.hidden_size;
  const SequenceBlock all = RankSequences(c, phase, batch, 0, 1);
  std::vector<float> input(static_cast<size_t>(all.rows() * d));
  FillInputRows(seed, all.rows(), 0, all.rows(), d, input.data());
  std::vector<double> ref(input.begin(), input.end()), next(ref.size());
  for (int64_t l = 0; l < 2; ++l) {
    ReferenceAttention(backend, m, Dtype::kFp32, seed, l, all, ref.data(), next.data());
    ref.swap(next);
  }
  double max_ref = 0, max_err = 0;
  for (double v : ref) max_ref = std::max(max_ref, std::fabs(v));
  int64_t rows_seen = 0;
  for (int r = 0; r < world; ++r) {
    const SequenceBlock block = RankSequences(c, phase, batch, r, world);
    AttentionStack stack(m, *weights, 2, seed, backend);
    EXPECT_TRUE(stack.Prepare(block).ok());
    const int64_t first_row = block.first * block.new_tokens;
    std::vector<float> x(input.begin() + first_row * d,
                         input.begin() + (first_row + block.rows()) * d);
    std::vector<float> out(x.size());
    for (int64_t l = 0; l < 2; ++l) {
      EXPECT_TRUE(stack.Forward(l, x.data(), out.data()).ok());
      x.swap(out);
    }
    for (int64_t i = 0; i < block.rows() * d; ++i) {
      max_err = std::max(max_err, std::fabs(x[static_cast<size_t>(i)] -
                                            ref[static_cast<size_t>(first_row * d + i)]));
    }
    rows_seen += block.rows();
  }
  EXPECT_EQ(rows_seen, all.rows());
  return max_err / max_ref;
}

TEST(AttentionTest, MatchesTheDoubleReferenceOnEverySplit) {
  std::vector<Case> cases;
  for (const ModelSpec& m : {TinyGqa(0), TinyGqa(6), TinyMla(12), TinyMla(0)}) {
    for (ServingPhase phase : {ServingPhase::kDecode, ServingPhase::kPrefill}) {
      cases.push_back({m, phase});
    }
  }
  for (const Case& k : cases) {
    for (int world : {1, 2, 4}) {
      SCOPED_TRACE(absl::StrCat(k.model.name, " window ", k.model.sliding_window, " q_lora ",
                                k.model.mla.q_lora_rank, ", ", ServingPhaseName(k.phase), ", ",
                                world, " rank(s)"));
      EXPECT_LT(RelativeError(k.model, k.phase, world), 1e-5);
    }
  }
}

// The parts' shapes add up to the parameter count METRICS.md gives (common/model.h), both kinds.
TEST(AttentionTest, PartShapesSumToTheCountedParameters) {
  for (const ModelSpec& m : {TinyGqa(0), TinyMla(12), TinyMla(0)}) {
    int64_t sum = 0;
    for (int p = 0; p < kAttentionParts; ++p) {
      sum += AttentionPartShape(m, static_cast<AttentionPart>(p)).size();
    }
    EXPECT_EQ(sum, AttentionParamsPerLayer(m)) << m.name << " q_lora " << m.mla.q_lora_rank;
  }
}

// The absorbed decode's queries go through W_UKᵀ, which Generate derives from W_kvb; the
// reference multiplies by W_kvb itself. This checks the derived matrix element by element.
TEST(AttentionTest, TheAbsorbedKeyProjectionIsKvBsKeyRowsTransposed) {
  const ModelSpec m = TinyMla(12);
  CpuBackend backend(1);
  absl::StatusOr<AttentionWeights> w = AttentionWeights::Generate(backend, m, 1, Dtype::kFp32, 5);
  ASSERT_TRUE(w.ok()) << w.status();
  const float* kv_b = static_cast<const float*>(w->part(0, AttentionPart::kKvB));
  const float* t = static_cast<const float*>(w->keys_up_t(0));
  const MlaAttention& a = m.mla;
  for (int64_t h = 0; h < a.heads; ++h) {
    for (int64_t i = 0; i < a.qk_nope_head_dim; ++i) {
      for (int64_t c = 0; c < a.kv_lora_rank; ++c) {
        ASSERT_EQ(t[(h * a.kv_lora_rank + c) * a.qk_nope_head_dim + i],
                  kv_b[(h * (a.qk_nope_head_dim + a.v_head_dim) + i) * a.kv_lora_rank + c]);
      }
    }
  }
}

// The window changes the output (the test above would pass with a window ignored otherwise only
// if both paths ignored it): the reference with and without it differ on the sliding layer.
TEST(AttentionTest, TheWindowIsHonoured) {
  CpuBackend backend(1);
  WorkloadConfig c;
  c.prompt_len = 20;
  c.output_len = 0;
  const SequenceBlock block = RankSequences(c, ServingPhase::kDecode, 1, 0, 1);
  std::vector<double> x(48, 0.5), full(48), windowed(48);
  ReferenceAttention(backend, TinyGqa(0), Dtype::kFp32, 3, 0, block, x.data(), full.data());
  ReferenceAttention(backend, TinyGqa(6), Dtype::kFp32, 3, 0, block, x.data(), windowed.data());
  double diff = 0;
  for (size_t i = 0; i < x.size(); ++i) diff = std::max(diff, std::fabs(full[i] - windowed[i]));
  EXPECT_GT(diff, 1e-3);
  // Layer 1 does not slide: the same either way.
  ReferenceAttention(backend, TinyGqa(0), Dtype::kFp32, 3, 1, block, x.data(), full.data());
  ReferenceAttention(backend, TinyGqa(6), Dtype::kFp32, 3, 1, block, x.data(), windowed.data());
  EXPECT_EQ(full, windowed);
}

TEST(AttentionTest, AnOddRopePartIsRefusedNamingTheFields) {
  ModelSpec m = TinyMla(12);
  m.mla.qk_rope_head_dim = 5;
  const absl::Status s = AttentionSupported(m);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("qk_rope_head_dim 5"), std::string::npos) << s;
}

}  // namespace
}  // namespace moecap
