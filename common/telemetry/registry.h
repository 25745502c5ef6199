// A small Prometheus metrics registry: counters, gauges, histograms and summaries, each a family
// with label names whose children are addressed by label values, rendered in the text exposition
// format 0.0.4. There is no global registry: the owner (the coordinator, an agent) creates one and
// passes it by reference to whatever updates metrics and to the MetricsServer that serves it.
//
// Thread-safety: every class here is safe to use from many threads at once. Counter and Gauge
// updates are lock-free atomics; a Histogram or Summary child has its own mutex, so a scrape never
// sees a bucket count that disagrees with _count.
#ifndef MOECAP_COMMON_TELEMETRY_REGISTRY_H_
#define MOECAP_COMMON_TELEMETRY_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/telemetry/metric_def.h"

namespace moecap::telemetry {

// A value that only goes up (a process restart resets it; Prometheus' rate() handles that).
class Counter {
 public:
  // Adds `delta`. A negative or NaN delta is ignored: it would make the series look like a reset.
  void Increment(double delta = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Increment(double delta = 1.0) { value_.fetch_add(delta, std::memory_order_relaxed); }
  void Decrement(double delta = 1.0) { value_.fetch_sub(delta, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts observations into cumulative buckets (upper bounds fixed by the family, +Inf implicit).
class Histogram {
 public:
  struct Snapshot {
    std::vector<double> upper_bounds;         // without +Inf
    std::vector<uint64_t> cumulative_counts;  // one per bound, then the +Inf bucket (== count)
    double sum = 0;
    uint64_t count = 0;
  };

  explicit Histogram(std::shared_ptr<const std::vector<double>> upper_bounds);
  // A NaN observation is ignored (it would turn _sum into NaN for good).
  void Observe(double value);
  Snapshot Read() const;

 private:
  const std::shared_ptr<const std::vector<double>> upper_bounds_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> bucket_counts_ ABSL_GUARDED_BY(mu_);  // not cumulative; last is +Inf
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
};

// Quantiles computed by the caller (no streaming estimation here): e.g. the p50/p90/p99 step
// times of a finished benchmark point, exported with their sum and count.
class Summary {
 public:
  struct Snapshot {
    std::vector<double> quantiles;  // the family's quantiles, increasing
    std::vector<double> values;     // one per quantile
    double sum = 0;
    uint64_t count = 0;
  };

  explicit Summary(std::shared_ptr<const std::vector<double>> quantiles);
  // InvalidArgument unless `values` has exactly one value per quantile of the family.
  absl::Status Set(absl::Span<const double> values, double sum, uint64_t count);
  Snapshot Read() const;

 private:
  const std::shared_ptr<const std::vector<double>> quantiles_;
  mutable absl::Mutex mu_;
  std::vector<double> values_ ABSL_GUARDED_BY(mu_);  // NaN until set: "no data yet"
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
};

// What all families share; the Registry renders them through this interface.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends the HELP and TYPE lines and every child's samples, children ordered by label values.
  virtual void Render(std::string& out) const = 0;

 protected:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names)
      : name_(std::move(name)),
        help_(std::move(help)),
        type_(type),
        label_names_(std::move(label_names)) {}

 private:
  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
};

// One metric name with its children, one per distinct tuple of label values.
template <typename Metric>
class Family final : public FamilyBase {
 public:
  // The child for `label_values` (one per label name, in order), created on first use.
  // InvalidArgument when the count is wrong or a value is not valid UTF-8. Children are shared:
  // a caller may keep the pointer; after Remove() it still works but is no longer exported.
  absl::StatusOr<std::shared_ptr<Metric>> WithLabels(const std::vector<std::string>& label_values);
  // Stops exporting a child (e.g. a finished job's series). True if it existed.
  bool Remove(const std::vector<std::string>& label_values);
  // Stops exporting every child (a family without labels gets its single child back, at zero).
  void RemoveAll();
  size_t size() const;

  void Render(std::string& out) const override;

 private:
  friend class Registry;
  struct Child {
    std::shared_ptr<Metric> metric;
    std::string rendered_labels;  // `a="x",b="y"`, escaped once at creation
  };

  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::function<std::shared_ptr<Metric>()> make_child);
  void AddDefaultChildLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::function<std::shared_ptr<Metric>()> make_child_;
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, Child> children_ ABSL_GUARDED_BY(mu_);
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;
using SummaryFamily = Family<Summary>;

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;
extern template class Family<Summary>;

// Owns metric families by name and renders them all, sorted by name, in the text format.
// Families live as long as the registry; pointers to them stay valid.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Each Add* validates the names (metric, labels), the HELP text (UTF-8) and the kind-specific
  // parameters, and fails with AlreadyExists when the name, or a series name it implies
  // (a histogram's _bucket/_sum/_count), is taken. A family without labels starts with its one
  // child at zero, so it is exported before its first update.
  absl::StatusOr<CounterFamily*> AddCounter(absl::string_view name, absl::string_view help,
                                            std::vector<std::string> label_names = {});
  absl::StatusOr<GaugeFamily*> AddGauge(absl::string_view name, absl::string_view help,
                                        std::vector<std::string> label_names = {});
  // `upper_bounds`: finite, strictly increasing; the label "le" is reserved.
  absl::StatusOr<HistogramFamily*> AddHistogram(absl::string_view name, absl::string_view help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> upper_bounds);
  // `quantiles`: in [0, 1], strictly increasing, at least one; the label "quantile" is reserved.
  absl::StatusOr<SummaryFamily*> AddSummary(absl::string_view name, absl::string_view help,
                                            std::vector<std::string> label_names,
                                            std::vector<double> quantiles);

  // Adds the families a table declares (see metric_names.h); stops at the first error.
  absl::Status Register(const MetricDef& def);
  absl::Status Register(absl::Span<const MetricDef> defs);

  // Families by name: NotFound when absent, FailedPrecondition when of another type.
  absl::StatusOr<CounterFamily*> GetCounter(absl::string_view name) const;
  absl::StatusOr<GaugeFamily*> GetGauge(absl::string_view name) const;
  absl::StatusOr<HistogramFamily*> GetHistogram(absl::string_view name) const;
  absl::StatusOr<SummaryFamily*> GetSummary(absl::string_view name) const;

  // `collect` runs at the start of every Render(), outside the registry's lock, to refresh values
  // that are cheaper to compute on scrape than to track (the age of the oldest queued job).
  void AddCollector(std::function<void()> collect);

  // The whole exposition, families sorted by name: deterministic for equal contents.
  std::string Render() const;

 private:
  absl::Status CheckNameFree(const std::string& name, MetricType type) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  template <typename Metric>
  absl::StatusOr<Family<Metric>*> AddFamily(absl::string_view name, absl::string_view help,
                                            MetricType type, std::vector<std::string> label_names,
                                            absl::string_view reserved_label,
                                            std::function<std::shared_ptr<Metric>()> make_child);
  template <typename Metric>
  absl::StatusOr<Family<Metric>*> GetFamily(absl::string_view name, MetricType type) const;

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> collectors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace moecap::telemetry

#endif  // MOECAP_COMMON_TELEMETRY_REGISTRY_H_
