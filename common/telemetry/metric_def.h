// A metric's declaration as data (name, type, help, label names, buckets), so that the list of
// metrics the coordinator and the agents export lives in one table (metric_names.h) that the code
// registers from, the docs list and the dashboard tests check against.
#ifndef MOECAP_COMMON_TELEMETRY_METRIC_DEF_H_
#define MOECAP_COMMON_TELEMETRY_METRIC_DEF_H_

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace moecap::telemetry {

enum class MetricType { kCounter, kGauge, kHistogram, kSummary };

// "counter", "gauge", "histogram", "summary": the words of the exposition format's TYPE line.
constexpr absl::string_view MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kSummary:
      return "summary";
  }
  return "untyped";
}

// The strings are plain `const char*` (never null) rather than absl::string_view: GCC's UBSan
// (the debug-asan preset) rejects the null check of string_view's constexpr constructor in the
// constant tables of metric_names.h.
struct MetricDef {
  const char* name = "";
  MetricType type = MetricType::kGauge;
  const char* help = "";
  // Label names in the order children are addressed, comma-separated ("job_id,phase"); "" for none.
  const char* labels = "";
  // Histograms: finite, strictly increasing bucket upper bounds (+Inf is implicit).
  absl::Span<const double> buckets;
  // Summaries: the quantiles (in [0, 1], strictly increasing) whose values the owner sets.
  absl::Span<const double> quantiles;
};

}  // namespace moecap::telemetry

#endif  // MOECAP_COMMON_TELEMETRY_METRIC_DEF_H_
