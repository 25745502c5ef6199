// Summaries of timing samples: percentiles (linear interpolation between closest ranks, NumPy's
// default), mean and max.
#ifndef MOECAP_AGENT_WORKLOAD_STATS_H_
#define MOECAP_AGENT_WORKLOAD_STATS_H_

#include <nlohmann/json.hpp>
#include <vector>

namespace moecap {

// The p-th percentile (0 <= p <= 100) of `values`: position p/100·(n−1) in sorted order,
// interpolated linearly. 0 for no values.
double Percentile(std::vector<double> values, double p);

struct Summary {
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double mean = 0;
  double min = 0;
  double max = 0;
  int count = 0;
};
Summary Summarize(const std::vector<double>& values);
nlohmann::json SummaryToJson(const Summary& summary);

// Element-wise maximum over several equally long series (the slowest rank of each iteration).
std::vector<double> ElementwiseMax(const std::vector<const std::vector<double>*>& series);
// Element-wise minimum over equally long series (empty series give an empty result).
std::vector<double> ElementwiseMin(const std::vector<const std::vector<double>*>& series);

}  // namespace moecap

#endif  // MOECAP_AGENT_WORKLOAD_STATS_H_
