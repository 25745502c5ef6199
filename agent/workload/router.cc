// Router scoring, top-k and routing overrides.
#include "agent/workload/router.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "agent/workload/random.h"
#include "common/metrics.h"

namespace moecap {

void RouterScores(RouterScoring scoring, const float* logits, int64_t experts, float* scores) {
  if (scoring == RouterScoring::kSigmoid) {
    for (int64_t e = 0; e < experts; ++e) scores[e] = 1.0f / (1.0f + std::exp(-logits[e]));
    return;
  }
  const float max = *std::max_element(logits, logits + experts);
  float sum = 0;
  for (int64_t e = 0; e < experts; ++e) {
    scores[e] = std::exp(logits[e] - max);
    sum += scores[e];
  }
  for (int64_t e = 0; e < experts; ++e) scores[e] /= sum;
}

void TopK(const float* values, int64_t n, int64_t k, int32_t* out) {
  // k is small (at most a few dozen): insertion into a sorted list of k beats a heap or a sort.
  int64_t filled = 0;
  for (int64_t e = 0; e < n; ++e) {
    const float v = values[e];
    if (filled == k && !(v > values[out[k - 1]])) continue;  // ties keep the lower index
    int64_t pos = filled < k ? filled++ : k - 1;
    while (pos > 0 && v > values[out[pos - 1]]) {
      out[pos] = out[pos - 1];
      --pos;
    }
    out[pos] = static_cast<int32_t>(e);
  }
}

void ChosenWeights(const float* scores, const int32_t* chosen, int64_t k, bool normalize,
                   float* weights) {
  float sum = 0;
  for (int64_t j = 0; j < k; ++j) {
    weights[j] = scores[chosen[j]];
    sum += weights[j];
  }
  if (normalize && sum > 0) {
    for (int64_t j = 0; j < k; ++j) weights[j] /= sum;
  }
}

std::vector<double> OverrideShares(const RoutingSpec& routing, int64_t experts, uint64_t seed,
                                   int64_t layer) {
  switch (routing.mode) {
    case RoutingMode::kGate:
      return {};
    case RoutingMode::kUniform:
      return std::vector<double>(static_cast<size_t>(experts), 1.0);
    case RoutingMode::kHistogram:
      return routing.histogram.size() == 1 ? routing.histogram[0]
                                           : routing.histogram[static_cast<size_t>(layer)];
    case RoutingMode::kZipf: {
      // A seeded Fisher-Yates shuffle assigns popularity ranks to experts.
      std::vector<int64_t> order(static_cast<size_t>(experts));
      std::iota(order.begin(), order.end(), 0);
      const uint64_t key = StreamKey({seed, static_cast<uint64_t>(StreamPurpose::kZipfPopularity),
                                      static_cast<uint64_t>(layer)});
      for (int64_t i = experts - 1; i > 0; --i) {
        const int64_t j = static_cast<int64_t>(Mix64(key + static_cast<uint64_t>(i)) %
                                               static_cast<uint64_t>(i + 1));
        std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
      }
      std::vector<double> shares(static_cast<size_t>(experts));
      for (int64_t rank = 0; rank < experts; ++rank) {
        shares[static_cast<size_t>(order[static_cast<size_t>(rank)])] =
            1.0 / std::pow(static_cast<double>(rank + 1), routing.zipf_exponent);
      }
      return shares;
    }
  }
  return {};
}

std::vector<int32_t> OverrideChoices(const std::vector<double>& shares, int64_t top_k,
                                     uint64_t seed, int64_t layer, int64_t tokens_total,
                                     Range tokens) {
  const int64_t experts = static_cast<int64_t>(shares.size());
  std::vector<double> log_share(shares.size());
  for (size_t e = 0; e < shares.size(); ++e) {
    log_share[e] = shares[e] > 0 ? std::log(shares[e]) : -std::numeric_limits<double>::infinity();
  }
  std::vector<int32_t> out(static_cast<size_t>(tokens.count * top_k));
  std::vector<float> keys(shares.size());
  for (int64_t t = 0; t < tokens.count; ++t) {
    const uint64_t key = StreamKey(
        {seed, static_cast<uint64_t>(StreamPurpose::kRoutingChoice), static_cast<uint64_t>(layer),
         static_cast<uint64_t>(tokens_total), static_cast<uint64_t>(tokens.begin + t)});
    // Gumbel top-k: log share + Gumbel noise, the k largest are a draw without replacement.
    for (int64_t e = 0; e < experts; ++e) {
      const double gumbel = -std::log(-std::log(UniformOpen01(key, static_cast<uint64_t>(e))));
      keys[static_cast<size_t>(e)] = static_cast<float>(log_share[static_cast<size_t>(e)] + gumbel);
    }
    TopK(keys.data(), experts, top_k, out.data() + t * top_k);
  }
  return out;
}

}  // namespace moecap
