// Routing: the router's scoring and top-k (softmax top-k, or sigmoid then normalising the k
// selected as DeepSeek-V3 does) and the plan's overrides (uniform, Zipf, fixed histogram). What a
// routing histogram says (activated experts, imbalance) is in common/ (metrics.h,
// parallel_metrics.h).
#ifndef MOECAP_AGENT_WORKLOAD_ROUTER_H_
#define MOECAP_AGENT_WORKLOAD_ROUTER_H_

#include <cstdint>
#include <vector>

#include "agent/workload/config.h"
#include "agent/workload/weights.h"
#include "common/model.h"

namespace moecap {

// scores[e] for one token: softmax over all E logits, or sigmoid of each.
void RouterScores(RouterScoring scoring, const float* logits, int64_t experts, float* scores);

// The indices of the k largest of values[0..n), largest first; ties go to the lower index.
void TopK(const float* values, int64_t n, int64_t k, int32_t* out);

// The combine weights of the chosen experts: their scores, divided by the scores' sum when
// `normalize` (the sum of k positive scores; an all-zero choice keeps zeros).
void ChosenWeights(const float* scores, const int32_t* chosen, int64_t k, bool normalize,
                   float* weights);

// The relative share each expert gets under an override in `layer`: uniform 1; Zipf
// 1/(rank+1)^exponent with the popularity ranks a seeded permutation per layer (so the hot expert
// is not always expert 0, or rank 0's); histogram its row. Empty for RoutingMode::kGate.
std::vector<double> OverrideShares(const RoutingSpec& routing, int64_t experts, uint64_t seed,
                                   int64_t layer);

// The experts the override picks for tokens [tokens.begin, +count) of a step of `tokens_total`
// tokens in `layer`: k distinct experts per token, drawn with probability following `shares`
// (successive sampling without replacement, done as Gumbel top-k). A pure function of (seed,
// layer, tokens_total, token): every rank split and the reference agree. Returns count·k ids.
std::vector<int32_t> OverrideChoices(const std::vector<double>& shares, int64_t top_k,
                                     uint64_t seed, int64_t layer, int64_t tokens_total,
                                     Range tokens);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_ROUTER_H_
