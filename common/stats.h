// Summaries of samples (timings, per-pass utilisations): the quantile with NumPy's default
// interpolation (linear between the closest ranks), a summary (p50, p90, p99, mean, min, max,
// count) and element-wise extrema over equally long series. The one percentile of the project:
// the agent, moecap-bench, the records analysis and the cluster aggregation all use it.
#ifndef MOECAP_COMMON_STATS_H_
#define MOECAP_COMMON_STATS_H_

#include <nlohmann/json.hpp>
#include <vector>

namespace moecap {

// The q-quantile (0 <= q <= 1) of `values`: position q·(n − 1) in sorted order, interpolated
// linearly between the two closest ranks (NumPy's default, "linear"); e.g. of {1, 2, 3, 4}
// q = 0.9 is position 2.7, 3 + 0.7·(4 − 3) = 3.7. A q below 0 or above 1 is clamped to 0 (the
// minimum) or 1 (the maximum). 0 for no values. The order need not be sorted; O(n) selection on
// the copy, so pass an rvalue when the caller no longer needs the values.
double Percentile(std::vector<double> values, double q);

struct Summary {
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double mean = 0;
  double min = 0;
  double max = 0;
  int count = 0;
};
// All zero for no values.
Summary Summarize(const std::vector<double>& values);
nlohmann::json SummaryToJson(const Summary& summary);

// Element-wise maximum over several equally long series (the slowest rank of each iteration).
std::vector<double> ElementwiseMax(const std::vector<const std::vector<double>*>& series);
// Element-wise minimum over equally long series (empty series give an empty result).
std::vector<double> ElementwiseMin(const std::vector<const std::vector<double>*>& series);

}  // namespace moecap

#endif  // MOECAP_COMMON_STATS_H_
