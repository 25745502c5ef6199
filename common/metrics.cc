// Counting rules of METRICS.md. Every formula here has a worked example in
// tests/unit/common/metrics_test.cc.
#include "common/metrics.h"

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

Precision MakePrecision(Dtype weights, std::optional<Dtype> kv_cache) {
  return Precision{DtypeBytes(weights), DtypeBytes(kv_cache.value_or(weights))};
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

PrefillPass PrefillPass::FromSequences(const std::vector<Sequence>& sequences,
                                       double activated_experts_sum) {
  PrefillPass pass;
  pass.sequences = static_cast<double>(sequences.size());
  pass.activated_experts_sum = activated_experts_sum;
  for (const Sequence& s : sequences) {
    pass.new_tokens += s.new_tokens;
    pass.cached_tokens += s.cached_tokens;
    pass.score_pairs += s.new_tokens * s.cached_tokens + s.new_tokens * (s.new_tokens + 1) / 2;
  }
  return pass;
}

PrefillPass PrefillPass::Fresh(double sequences, double new_tokens, double activated_experts_sum) {
  PrefillPass pass;
  pass.sequences = sequences;
  pass.new_tokens = new_tokens;
  pass.activated_experts_sum = activated_experts_sum;
  if (sequences > 0) {
    const double n = new_tokens / sequences;
    pass.score_pairs = sequences * n * (n + 1) / 2;
  }
  return pass;
}

Counts CountMoeBlocks(const ModelSpec& m, const Precision& p, double moe_layers, double tokens,
                      double activated_experts_sum, Counting counting) {
  const double k =
      static_cast<double>(counting == Counting::kDense ? m.experts : m.experts_per_token);
  const double activated =
      counting == Counting::kDense ? moe_layers * m.experts : activated_experts_sum;
  Counts counts;
  counts[Term::kRouter].bytes = p.weight_bytes * moe_layers * RouterParamsPerLayer(m);
  counts[Term::kSharedExperts].bytes = p.weight_bytes * moe_layers * SharedParamsPerLayer(m);
  counts[Term::kRoutedExperts].bytes = p.weight_bytes * activated * ParamsPerExpert(m);
  const double f = 2.0 * tokens * moe_layers;
  counts[Term::kRouter].flops = f * RouterParamsPerLayer(m);
  counts[Term::kSharedExperts].flops = f * SharedParamsPerLayer(m);
  counts[Term::kRoutedExperts].flops = f * k * ParamsPerExpert(m);
  return counts;
}

void AddLinearFlops(const ModelSpec& m, Counting counting, double tokens, Counts& counts) {
  const double f = 2.0 * tokens;
  counts[Term::kAttention].flops += f * m.layers * AttentionParamsPerLayer(m);
  counts[Term::kDenseFfn].flops += f * m.dense_layers * DenseFfnParamsPerLayer(m);
  counts[Term::kLmHead].flops += f * LmHeadParams(m);
  const Counts moe =
      CountMoeBlocks(m, Precision{}, static_cast<double>(m.MoeLayers()), tokens, 0, counting);
  for (Term t : {Term::kRouter, Term::kSharedExperts, Term::kRoutedExperts}) {
    counts[t].flops += moe[t].flops;
  }
}

void AddWeightBytes(const ModelSpec& m, const Precision& p, double activated_experts_sum,
                    Counting counting, Counts& counts) {
  counts[Term::kAttention].bytes += p.weight_bytes * m.layers * AttentionParamsPerLayer(m);
  counts[Term::kDenseFfn].bytes += p.weight_bytes * m.dense_layers * DenseFfnParamsPerLayer(m);
  counts[Term::kLmHead].bytes += p.weight_bytes * LmHeadParams(m);
  const Counts moe =
      CountMoeBlocks(m, p, static_cast<double>(m.MoeLayers()), 0, activated_experts_sum, counting);
  for (Term t : {Term::kRouter, Term::kSharedExperts, Term::kRoutedExperts}) {
    counts[t].bytes += moe[t].bytes;
  }
}

namespace {
// 2·n_h·(d_qk + d_v) per layer per query-key pair: QK^T and the weighted sum over V.
double ScoreFlopsPerPairPerLayer(const ModelSpec& m) {
  return 2.0 * m.AttentionHeads() * (m.QueryKeyHeadDim() + m.ValueHeadDim());
}
}  // namespace

Counts CountDecodePass(const ModelSpec& m, const Precision& p, const DecodePass& pass,
                       Counting counting) {
  Counts counts;
  AddWeightBytes(m, p, pass.activated_experts_sum, counting, counts);
  counts[Term::kKvCache].bytes =
      p.kv_bytes * pass.context_sum * m.layers * KvElementsPerTokenPerLayer(m);
  AddLinearFlops(m, counting, pass.sequences, counts);
  counts[Term::kAttentionScores].flops = m.layers * ScoreFlopsPerPairPerLayer(m) * pass.context_sum;
  return counts;
}

Counts CountPrefillPass(const ModelSpec& m, const Precision& p, const PrefillPass& pass,
                        Counting counting) {
  Counts counts;
  AddWeightBytes(m, p, pass.activated_experts_sum, counting, counts);
  counts[Term::kKvCache].bytes = p.kv_bytes * (pass.new_tokens + pass.cached_tokens) * m.layers *
                                 KvElementsPerTokenPerLayer(m);
  AddLinearFlops(m, counting, pass.new_tokens, counts);
  counts[Term::kAttentionScores].flops = m.layers * ScoreFlopsPerPairPerLayer(m) * pass.score_pairs;
  return counts;
}

Counts CountPrefillStep(const ModelSpec& m, const Precision& p, int64_t batch, int64_t prompt_len,
                        double activated_experts_sum, Counting counting) {
  const double b = static_cast<double>(batch);
  return CountPrefillPass(
      m, p, PrefillPass::Fresh(b, b * static_cast<double>(prompt_len), activated_experts_sum),
      counting);
}

Counts CountMeanDecodeStep(const ModelSpec& m, const Precision& p, int64_t batch,
                           int64_t prompt_len, int64_t output_len, double activated_experts_sum,
                           Counting counting) {
  const double b = static_cast<double>(batch);
  const double mean_context = static_cast<double>(prompt_len) + static_cast<double>(output_len) / 2;
  return CountDecodePass(m, p, DecodePass{b, b * mean_context, activated_experts_sum}, counting);
}

double Utilization(double amount, double seconds, double devices, double peak_per_device) {
  return amount / (seconds * devices * peak_per_device);
}

double RooflineSeconds(double bytes, double flops, double devices, double peak_bandwidth,
                       double peak_flops) {
  return std::max(bytes / (devices * peak_bandwidth), flops / (devices * peak_flops));
}

}  // namespace moecap
