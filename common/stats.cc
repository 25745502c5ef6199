// Percentiles and summaries.
#include "common/stats.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>

namespace moecap {

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  const double position = std::clamp(q, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  const size_t lower = static_cast<size_t>(std::floor(position));
  const double fraction = position - static_cast<double>(lower);
  auto nth = values.begin() + static_cast<std::ptrdiff_t>(lower);
  std::nth_element(values.begin(), nth, values.end());
  const double low = *nth;
  if (fraction == 0 || lower + 1 >= values.size()) return low;
  // After nth_element every element past `nth` is >= it; the smallest is the next rank.
  const double high = *std::min_element(nth + 1, values.end());
  return low + fraction * (high - low);
}

Summary Summarize(const std::vector<double>& values) {
  Summary s;
  if (values.empty()) return s;
  s.count = static_cast<int>(values.size());
  s.p50 = Percentile(values, 0.50);
  s.p90 = Percentile(values, 0.90);
  s.p99 = Percentile(values, 0.99);
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  s.min = *std::min_element(values.begin(), values.end());
  s.max = *std::max_element(values.begin(), values.end());
  return s;
}

nlohmann::json SummaryToJson(const Summary& s) {
  return {{"p50", s.p50}, {"p90", s.p90}, {"p99", s.p99},    {"mean", s.mean},
          {"min", s.min}, {"max", s.max}, {"count", s.count}};
}

std::vector<double> ElementwiseMax(const std::vector<const std::vector<double>*>& series) {
  std::vector<double> out;
  for (const std::vector<double>* s : series) {
    if (out.size() < s->size()) out.resize(s->size(), 0.0);
    for (size_t i = 0; i < s->size(); ++i) out[i] = std::max(out[i], (*s)[i]);
  }
  return out;
}

std::vector<double> ElementwiseMin(const std::vector<const std::vector<double>*>& series) {
  if (series.empty()) return {};
  std::vector<double> out = *series.front();
  for (const std::vector<double>* s : series) {
    out.resize(std::min(out.size(), s->size()));
    for (size_t i = 0; i < out.size(); ++i) out[i] = std::min(out[i], (*s)[i]);
  }
  return out;
}

}  // namespace moecap
