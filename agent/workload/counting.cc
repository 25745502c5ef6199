// Per-rank counting on top of CountMoeBlocks.
#include "agent/workload/counting.h"

#include <string>

namespace moecap {

RankCounts CountRankStep(const ModelSpec& scaled, Dtype dtype, int64_t layers,
                         const StepTally& tally, bool counts_replicated,
                         const AttentionShare* attention) {
  const Precision precision = MakePrecision(dtype);
  const double moe_layers = static_cast<double>(layers);
  RankCounts out;
  // Router and shared experts over the rank's own tokens (no routed experts: A = 0).
  const Counts own =
      CountMoeBlocks(scaled, precision, moe_layers, static_cast<double>(tally.own_tokens), 0);
  // Routed experts seen as pairs: one MoE "layer" whose tokens are the pairs the rank computed,
  // each using one expert (k = 1), with the rank's activated experts summed over layers.
  ModelSpec per_pair = scaled;
  per_pair.experts_per_token = 1;
  const Counts routed =
      CountMoeBlocks(per_pair, precision, 1, static_cast<double>(tally.pairs_computed),
                     static_cast<double>(tally.local_activated_sum));

  for (Term t : {Term::kRouter, Term::kSharedExperts}) {
    out.counted[t].flops = own[t].flops;
    out.counted[t].bytes = counts_replicated ? own[t].bytes : 0;
    out.physical[t].flops = own[t].flops;
    // A rank without tokens skips the router and shared GEMMs and reads neither.
    out.physical[t].bytes = tally.own_tokens > 0 ? own[t].bytes : 0;
  }
  out.counted[Term::kRoutedExperts] = routed[Term::kRoutedExperts];
  out.physical[Term::kRoutedExperts] = routed[Term::kRoutedExperts];

  const double row_bytes = static_cast<double>(scaled.hidden_size) * DtypeBytes(dtype);
  const double shared_rows =
      scaled.shared_experts > 0 ? static_cast<double>(tally.own_tokens) * moe_layers : 0;
  out.activation_bytes = 2 * row_bytes * (static_cast<double>(tally.pairs_computed) + shared_rows);
  out.comm.dispatch_logical = row_bytes * static_cast<double>(tally.dispatch_rows_sent);
  out.comm.dispatch_remote =
      row_bytes * static_cast<double>(tally.dispatch_rows_sent - tally.dispatch_rows_to_self);
  out.comm.combine_logical = row_bytes * static_cast<double>(tally.combine_rows_sent);
  out.comm.combine_remote =
      row_bytes * static_cast<double>(tally.combine_rows_sent - tally.combine_rows_to_self);
  out.comm.count_exchange = static_cast<double>(tally.count_exchange_bytes);
  if (attention != nullptr) {
    const SequenceBlock& s = attention->sequences;
    const Counts a = CountDecoderStep(StackModel(scaled, layers, attention->dense_layers),
                                      precision, attention->kind, static_cast<double>(s.count),
                                      static_cast<double>(s.new_tokens),
                                      static_cast<double>(s.cached), attention->lm_head);
    for (Term t : {Term::kAttention, Term::kDenseFfn, Term::kLmHead}) {
      out.counted[t].flops = a[t].flops;
      out.counted[t].bytes = counts_replicated ? a[t].bytes : 0;
      out.physical[t].flops = a[t].flops;
      // A rank without sequences runs none of these GEMMs and reads none of their weights.
      out.physical[t].bytes = s.count > 0 ? a[t].bytes : 0;
    }
    for (Term t : {Term::kKvCache, Term::kAttentionScores}) {
      out.counted[t] = a[t];
      out.physical[t] = a[t];
    }
  }
  return out;
}

}  // namespace moecap
