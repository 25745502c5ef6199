// Bandwidths and imbalance of the expert-parallel exchange (see parallel_metrics.h).
#include "common/parallel_metrics.h"

#include <algorithm>
#include <numeric>

namespace moecap {

double BusBandwidth(double algbw, int ranks) {
  if (ranks <= 1) return 0;
  return algbw * static_cast<double>(ranks - 1) / static_cast<double>(ranks);
}

AllToAllFigures AllToAllBandwidth(absl::Span<const double> logical, absl::Span<const double> remote,
                                  double seconds) {
  AllToAllFigures out;
  out.seconds = seconds;
  double busiest_logical = 0;
  double busiest_remote = 0;
  for (double b : logical) {
    out.logical_bytes += b;
    busiest_logical = std::max(busiest_logical, b);
  }
  for (double b : remote) {
    out.remote_bytes += b;
    busiest_remote = std::max(busiest_remote, b);
  }
  if (seconds > 0) {
    out.algbw = busiest_logical / seconds;
    out.busbw = BusBandwidth(out.algbw, static_cast<int>(logical.size()));
    out.remote_bw = busiest_remote / seconds;
  }
  return out;
}

double ExpertImbalance(double busiest, double all_tokens, int64_t experts) {
  if (all_tokens <= 0 || experts <= 0) return 0;
  return busiest * static_cast<double>(experts) / all_tokens;
}

RoutingImbalance ImbalanceOf(const std::vector<std::vector<int64_t>>& counts) {
  RoutingImbalance out;
  for (const std::vector<int64_t>& layer : counts) {
    const int64_t all = std::accumulate(layer.begin(), layer.end(), int64_t{0});
    const int64_t busiest = layer.empty() ? 0 : *std::max_element(layer.begin(), layer.end());
    const double imbalance = ExpertImbalance(static_cast<double>(busiest), static_cast<double>(all),
                                             static_cast<int64_t>(layer.size()));
    out.per_layer.push_back(imbalance);
    out.max = std::max(out.max, imbalance);
  }
  return out;
}

}  // namespace moecap
