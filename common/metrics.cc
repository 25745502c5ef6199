// Counting rules of METRICS.md. Every formula here has a worked example in
// tests/unit/common/metrics_test.cc.
#include "common/metrics.h"

#include <algorithm>
#include <cmath>

namespace moecap {

absl::string_view TermName(Term term) {
  switch (term) {
    case Term::kAttention:
      return "attention";
    case Term::kRouter:
      return "router";
    case Term::kDenseFfn:
      return "dense_ffn";
    case Term::kSharedExperts:
      return "shared_experts";
    case Term::kRoutedExperts:
      return "routed_experts";
    case Term::kLmHead:
      return "lm_head";
    case Term::kKvCache:
      return "kv_cache";
    case Term::kAttentionScores:
      return "attention_scores";
  }
  return "unknown";
}

double Counts::bytes() const {
  double sum = 0;
  for (const TermCount& t : terms_) sum += t.bytes;
  return sum;
}

double Counts::flops() const {
  double sum = 0;
  for (const TermCount& t : terms_) sum += t.flops;
  return sum;
}

Counts& Counts::operator+=(const Counts& other) {
  for (int i = 0; i < kNumTerms; ++i) {
    terms_[i].bytes += other.terms_[i].bytes;
    terms_[i].flops += other.terms_[i].flops;
  }
  return *this;
}

double ExpectedActivatedExperts(const ModelSpec& model, double tokens) {
  if (tokens <= 0) return 0;
  const double e = static_cast<double>(model.experts);
  const double k = static_cast<double>(model.experts_per_token);
  return e * (1.0 - std::pow(1.0 - k / e, tokens));
}

double ExpectedActivatedExpertsSum(const ModelSpec& model, double tokens) {
  return static_cast<double>(model.MoeLayers()) * ExpectedActivatedExperts(model, tokens);
}

double ActivatedExpertsSum(const std::vector<std::vector<int64_t>>& counts) {
  double sum = 0;
  for (const auto& layer : counts) {
    for (int64_t c : layer) sum += c > 0 ? 1 : 0;
  }
  return sum;
}

double WindowedScorePairs(double n, double h, double w) {
  if (n <= 0) return 0;
  if (h >= w) return n * w;
  const double below = std::min(n, w - h);  // queries whose keys all fit in the window
  return below * h + below * (below + 1) / 2 + (n - below) * w;
}

PrefillPass PrefillPass::FromSequences(const std::vector<Sequence>& sequences,
                                       double activated_experts_sum, double window) {
  PrefillPass pass;
  pass.sequences = static_cast<double>(sequences.size());
  pass.activated_experts_sum = activated_experts_sum;
  for (const Sequence& s : sequences) {
    pass.new_tokens += s.new_tokens;
    pass.cached_tokens += s.cached_tokens;
    pass.score_pairs += s.new_tokens * s.cached_tokens + s.new_tokens * (s.new_tokens + 1) / 2;
    if (s.completes) pass.completed_sequences += 1;
    if (window > 0) {
      pass.windowed_kv_tokens += std::min(s.new_tokens + s.cached_tokens, window);
      pass.windowed_score_pairs += WindowedScorePairs(s.new_tokens, s.cached_tokens, window);
    }
  }
  return pass;
}

PrefillPass PrefillPass::Fresh(double sequences, double new_tokens, double activated_experts_sum,
                               double window) {
  PrefillPass pass;
  pass.sequences = sequences;
  pass.new_tokens = new_tokens;
  pass.completed_sequences = sequences;
  pass.activated_experts_sum = activated_experts_sum;
  if (sequences > 0) {
    const double n = new_tokens / sequences;
    pass.score_pairs = sequences * n * (n + 1) / 2;
    if (window > 0) {
      pass.windowed_kv_tokens = sequences * std::min(n, window);
      pass.windowed_score_pairs = sequences * WindowedScorePairs(n, 0, window);
    }
  }
  return pass;
}

double ScoreFlopsPerPair(const ModelSpec& m, PassKind kind) {
  const double heads = static_cast<double>(m.AttentionHeads());
  if (m.attention == AttentionKind::kGqa) return 2.0 * heads * 2.0 * m.gqa.head_dim;
  const MlaAttention& a = m.mla;
  if (kind == PassKind::kDecode) {
    return 2.0 * heads * (2.0 * a.kv_lora_rank + a.qk_rope_head_dim);
  }
  return 2.0 * heads * (a.qk_nope_head_dim + a.qk_rope_head_dim + a.v_head_dim);
}

Counts CountMoeBlocks(const ModelSpec& m, const Precision& p, double moe_layers, double tokens,
                      double activated_experts_sum, Counting counting) {
  const double k =
      static_cast<double>(counting == Counting::kDense ? m.experts : m.experts_per_token);
  const double activated =
      counting == Counting::kDense ? moe_layers * m.experts : activated_experts_sum;
  Counts counts;
  counts[Term::kRouter].bytes = p.attention_bytes * moe_layers * RouterParamsPerLayer(m);
  counts[Term::kSharedExperts].bytes = p.expert_bytes * moe_layers * SharedParamsPerLayer(m);
  counts[Term::kRoutedExperts].bytes = p.expert_bytes * activated * ParamsPerExpert(m);
  const double f = 2.0 * tokens * moe_layers;
  counts[Term::kRouter].flops = f * RouterParamsPerLayer(m);
  counts[Term::kSharedExperts].flops = f * SharedParamsPerLayer(m);
  counts[Term::kRoutedExperts].flops = f * k * ParamsPerExpert(m);
  return counts;
}

void AddLinearFlops(const ModelSpec& m, Counting counting, double tokens, double logit_positions,
                    Counts& counts) {
  const double f = 2.0 * tokens;
  counts[Term::kAttention].flops += f * m.layers * AttentionParamsPerLayer(m);
  counts[Term::kDenseFfn].flops += f * m.dense_layers * DenseFfnParamsPerLayer(m);
  counts[Term::kLmHead].flops += 2.0 * logit_positions * LmHeadParams(m);
  const Counts moe =
      CountMoeBlocks(m, Precision{}, static_cast<double>(m.MoeLayers()), tokens, 0, counting);
  for (Term t : {Term::kRouter, Term::kSharedExperts, Term::kRoutedExperts}) {
    counts[t].flops += moe[t].flops;
  }
}

void AddWeightBytes(const ModelSpec& m, const Precision& p, double activated_experts_sum,
                    Counting counting, Counts& counts) {
  counts[Term::kAttention].bytes += p.attention_bytes * m.layers * AttentionParamsPerLayer(m);
  counts[Term::kDenseFfn].bytes += p.attention_bytes * m.dense_layers * DenseFfnParamsPerLayer(m);
  counts[Term::kLmHead].bytes += p.lm_head_bytes * LmHeadParams(m);
  const Counts moe =
      CountMoeBlocks(m, p, static_cast<double>(m.MoeLayers()), 0, activated_experts_sum, counting);
  for (Term t : {Term::kRouter, Term::kSharedExperts, Term::kRoutedExperts}) {
    counts[t].bytes += moe[t].bytes;
  }
}

namespace {

// KV entries and score pairs summed over the layers: full-attention layers see the whole
// context, sliding-window ones the windowed sums.
double OverLayers(const ModelSpec& m, double full, double windowed) {
  return static_cast<double>(m.FullAttentionLayers()) * full +
         static_cast<double>(m.sliding_window_layers) * windowed;
}

double WindowedContextSum(const ModelSpec& m, const DecodePass& pass) {
  if (m.sliding_window_layers == 0) return 0;
  if (pass.windowed_context_sum.has_value()) return *pass.windowed_context_sum;
  if (pass.sequences <= 0) return 0;
  return pass.sequences *
         std::min(pass.context_sum / pass.sequences, static_cast<double>(m.sliding_window));
}

// The KV read and the token FLOPs of a decode pass (everything but the weight bytes).
void AddDecodeWork(const ModelSpec& m, const Precision& p, const DecodePass& pass,
                   Counting counting, Counts& counts) {
  const double windowed = WindowedContextSum(m, pass);
  counts[Term::kKvCache].bytes +=
      p.kv_bytes * KvElementsPerTokenPerLayer(m) * OverLayers(m, pass.context_sum, windowed);
  // Every decode token computes its logits.
  AddLinearFlops(m, counting, pass.sequences, pass.sequences, counts);
  counts[Term::kAttentionScores].flops +=
      ScoreFlopsPerPair(m, PassKind::kDecode) * OverLayers(m, pass.context_sum, windowed);
}

void AddPrefillWork(const ModelSpec& m, const Precision& p, const PrefillPass& pass,
                    Counting counting, Counts& counts) {
  counts[Term::kKvCache].bytes +=
      p.kv_bytes * KvElementsPerTokenPerLayer(m) *
      OverLayers(m, pass.new_tokens + pass.cached_tokens, pass.windowed_kv_tokens);
  AddLinearFlops(m, counting, pass.new_tokens, pass.completed_sequences, counts);
  counts[Term::kAttentionScores].flops +=
      ScoreFlopsPerPair(m, PassKind::kPrefill) *
      OverLayers(m, pass.score_pairs, pass.windowed_score_pairs);
}

}  // namespace

Counts CountDecoderStep(const ModelSpec& stack, const Precision& precision, PassKind kind,
                        double sequences, double new_tokens, double cached, bool lm_head) {
  Counts whole;
  if (kind == PassKind::kDecode) {
    DecodePass pass;
    pass.sequences = sequences;
    pass.context_sum = sequences * (cached + 1);
    whole = CountDecodePass(stack, precision, pass);
  } else {
    // One sequence's sums, times the sequences (they are alike).
    PrefillPass pass = PrefillPass::FromSequences({{new_tokens, cached, true}}, 0,
                                                  static_cast<double>(stack.sliding_window));
    pass.sequences *= sequences;
    pass.new_tokens *= sequences;
    pass.cached_tokens *= sequences;
    pass.score_pairs *= sequences;
    pass.completed_sequences *= sequences;
    pass.windowed_kv_tokens *= sequences;
    pass.windowed_score_pairs *= sequences;
    whole = CountPrefillPass(stack, precision, pass);
  }
  Counts out;
  for (Term t : {Term::kAttention, Term::kDenseFfn, Term::kKvCache, Term::kAttentionScores}) {
    out[t] = whole[t];
  }
  if (lm_head) out[Term::kLmHead] = whole[Term::kLmHead];
  return out;
}

Counts CountDecodePass(const ModelSpec& m, const Precision& p, const DecodePass& pass,
                       Counting counting) {
  Counts counts;
  AddWeightBytes(m, p, pass.activated_experts_sum, counting, counts);
  AddDecodeWork(m, p, pass, counting, counts);
  return counts;
}

Counts CountPrefillPass(const ModelSpec& m, const Precision& p, const PrefillPass& pass,
                        Counting counting) {
  Counts counts;
  AddWeightBytes(m, p, pass.activated_experts_sum, counting, counts);
  AddPrefillWork(m, p, pass, counting, counts);
  return counts;
}

Counts CountMixedPass(const ModelSpec& m, const Precision& p, const DecodePass& decode,
                      const PrefillPass& prefill, double activated_experts_sum, Counting counting) {
  Counts counts;
  AddWeightBytes(m, p, activated_experts_sum, counting, counts);
  AddDecodeWork(m, p, decode, counting, counts);
  AddPrefillWork(m, p, prefill, counting, counts);
  return counts;
}

Counts CountPrefillStep(const ModelSpec& m, const Precision& p, int64_t batch, int64_t prompt_len,
                        double activated_experts_sum, Counting counting) {
  const double b = static_cast<double>(batch);
  return CountPrefillPass(
      m, p,
      PrefillPass::Fresh(b, b * static_cast<double>(prompt_len), activated_experts_sum,
                         static_cast<double>(m.sliding_window)),
      counting);
}

namespace {
// Σ_{s=1..O−1} min(P + s, w) / (O − 1): the mean context of a sliding-window layer's decode steps.
double MeanWindowedDecodeContext(double prompt, double output, double window) {
  const double steps = output - 1;
  if (steps <= 0) return 0;
  const double below = std::clamp(window - prompt, 0.0, steps);  // steps with P + s <= w
  const double sum = below * prompt + below * (below + 1) / 2 + (steps - below) * window;
  return sum / steps;
}
}  // namespace

Counts CountMeanDecodeStep(const ModelSpec& m, const Precision& p, int64_t batch,
                           int64_t prompt_len, int64_t output_len, double activated_experts_sum,
                           Counting counting) {
  const double b = static_cast<double>(batch);
  const double prompt = static_cast<double>(prompt_len);
  const double mean_context = prompt + static_cast<double>(output_len) / 2;
  DecodePass pass{b, b * mean_context, activated_experts_sum};
  if (m.sliding_window_layers > 0) {
    pass.windowed_context_sum =
        b * MeanWindowedDecodeContext(prompt, static_cast<double>(output_len),
                                      static_cast<double>(m.sliding_window));
  }
  return CountDecodePass(m, p, pass, counting);
}

double Utilization(double amount, double seconds, double devices, double peak_per_device) {
  return amount / (seconds * devices * peak_per_device);
}

double RooflineSeconds(double bytes, double flops, double devices, double peak_bandwidth,
                       double peak_flops) {
  return std::max(bytes / (devices * peak_bandwidth), flops / (devices * peak_flops));
}

}  // namespace moecap
