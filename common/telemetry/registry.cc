// Metric families, their children and the text exposition of a whole registry.
#include "common/telemetry/registry.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "common/telemetry/text_format.h"

namespace moecap::telemetry {
namespace {

// `{a="x",b="y"}` from the pre-rendered labels plus one extra label (le, quantile), or "" when
// there are no labels at all.
std::string LabelBlock(const std::string& rendered_labels, absl::string_view extra_name = "",
                       absl::string_view extra_value = "") {
  if (rendered_labels.empty() && extra_name.empty()) return "";
  std::string out = "{";
  out += rendered_labels;
  if (!extra_name.empty()) {
    if (!rendered_labels.empty()) out += ",";
    absl::StrAppend(&out, extra_name, "=\"", extra_value, "\"");
  }
  out += "}";
  return out;
}

void AppendSample(std::string& out, absl::string_view name, const std::string& label_block,
                  double value) {
  absl::StrAppend(&out, name, label_block, " ", FormatValue(value), "\n");
}

void AppendChild(std::string& out, const std::string& name, const std::string& labels,
                 const Counter& counter) {
  AppendSample(out, name, LabelBlock(labels), counter.Value());
}

void AppendChild(std::string& out, const std::string& name, const std::string& labels,
                 const Gauge& gauge) {
  AppendSample(out, name, LabelBlock(labels), gauge.Value());
}

void AppendChild(std::string& out, const std::string& name, const std::string& labels,
                 const Histogram& histogram) {
  const Histogram::Snapshot snapshot = histogram.Read();
  const std::string bucket_name = name + "_bucket";
  for (size_t i = 0; i < snapshot.upper_bounds.size(); ++i) {
    AppendSample(out, bucket_name, LabelBlock(labels, "le", FormatValue(snapshot.upper_bounds[i])),
                 static_cast<double>(snapshot.cumulative_counts[i]));
  }
  AppendSample(out, bucket_name, LabelBlock(labels, "le", "+Inf"),
               static_cast<double>(snapshot.count));
  AppendSample(out, name + "_sum", LabelBlock(labels), snapshot.sum);
  AppendSample(out, name + "_count", LabelBlock(labels), static_cast<double>(snapshot.count));
}

void AppendChild(std::string& out, const std::string& name, const std::string& labels,
                 const Summary& summary) {
  const Summary::Snapshot snapshot = summary.Read();
  for (size_t i = 0; i < snapshot.quantiles.size(); ++i) {
    AppendSample(out, name, LabelBlock(labels, "quantile", FormatValue(snapshot.quantiles[i])),
                 snapshot.values[i]);
  }
  AppendSample(out, name + "_sum", LabelBlock(labels), snapshot.sum);
  AppendSample(out, name + "_count", LabelBlock(labels), static_cast<double>(snapshot.count));
}

absl::Status ValidateLabelNames(absl::string_view metric, const std::vector<std::string>& names,
                                absl::string_view reserved_label) {
  std::set<std::string> seen;
  for (const std::string& label : names) {
    if (absl::Status status = ValidateLabelName(label); !status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(metric, ": ", status.message()));
    }
    if (!reserved_label.empty() && label == reserved_label) {
      return absl::InvalidArgumentError(
          absl::StrCat(metric, ": label name \"", label, "\" is reserved for this metric type"));
    }
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(metric, ": label name \"", label, "\" appears twice"));
    }
  }
  return absl::OkStatus();
}

// The series names a family of `type` named `name` writes besides `name` itself.
std::vector<std::string> ImpliedSeriesNames(const std::string& name, MetricType type) {
  switch (type) {
    case MetricType::kHistogram:
      return {name + "_bucket", name + "_sum", name + "_count"};
    case MetricType::kSummary:
      return {name + "_sum", name + "_count"};
    default:
      return {};
  }
}

}  // namespace

void Counter::Increment(double delta) {
  if (!(delta >= 0)) return;  // also false for NaN
  value_.fetch_add(delta, std::memory_order_relaxed);
}

Histogram::Histogram(std::shared_ptr<const std::vector<double>> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), bucket_counts_(upper_bounds_->size() + 1, 0) {}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  // The first bucket whose upper bound is >= value ("le" is inclusive); past the end is +Inf.
  const size_t bucket = std::lower_bound(upper_bounds_->begin(), upper_bounds_->end(), value) -
                        upper_bounds_->begin();
  absl::MutexLock lock(&mu_);
  ++bucket_counts_[bucket];
  sum_ += value;
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snapshot;
  snapshot.upper_bounds = *upper_bounds_;
  absl::MutexLock lock(&mu_);
  uint64_t running = 0;
  for (size_t i = 0; i < upper_bounds_->size(); ++i) {
    running += bucket_counts_[i];
    snapshot.cumulative_counts.push_back(running);
  }
  running += bucket_counts_.back();
  snapshot.cumulative_counts.push_back(running);
  snapshot.count = running;
  snapshot.sum = sum_;
  return snapshot;
}

Summary::Summary(std::shared_ptr<const std::vector<double>> quantiles)
    : quantiles_(std::move(quantiles)), values_(quantiles_->size(), std::nan("")) {}

absl::Status Summary::Set(absl::Span<const double> values, double sum, uint64_t count) {
  if (values.size() != quantiles_->size()) {
    return absl::InvalidArgumentError(absl::StrCat("summary values: expected ", quantiles_->size(),
                                                   " (one per quantile), got ", values.size()));
  }
  absl::MutexLock lock(&mu_);
  values_.assign(values.begin(), values.end());
  sum_ = sum;
  count_ = count;
  return absl::OkStatus();
}

Summary::Snapshot Summary::Read() const {
  Snapshot snapshot;
  snapshot.quantiles = *quantiles_;
  absl::MutexLock lock(&mu_);
  snapshot.values = values_;
  snapshot.sum = sum_;
  snapshot.count = count_;
  return snapshot;
}

template <typename Metric>
Family<Metric>::Family(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names,
                       std::function<std::shared_ptr<Metric>()> make_child)
    : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
      make_child_(std::move(make_child)) {
  absl::MutexLock lock(&mu_);
  AddDefaultChildLocked();
}

template <typename Metric>
void Family<Metric>::AddDefaultChildLocked() {
  if (label_names().empty())
    children_.emplace(std::vector<std::string>{}, Child{make_child_(), ""});
}

template <typename Metric>
absl::StatusOr<std::shared_ptr<Metric>> Family<Metric>::WithLabels(
    const std::vector<std::string>& label_values) {
  if (label_values.size() != label_names().size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name(), ": expected ", label_names().size(), " label values (",
                     absl::StrJoin(label_names(), ", "), "), got ", label_values.size()));
  }
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = children_.find(label_values); it != children_.end()) return it->second.metric;
  }
  std::vector<std::string> rendered;
  for (size_t i = 0; i < label_values.size(); ++i) {
    if (absl::Status status =
            ValidateUtf8(absl::StrCat(name(), " label ", label_names()[i]), label_values[i]);
        !status.ok()) {
      return status;
    }
    rendered.push_back(
        absl::StrCat(label_names()[i], "=\"", EscapeLabelValue(label_values[i]), "\""));
  }
  absl::MutexLock lock(&mu_);
  // Another thread may have created it between the two locks; emplace keeps the first.
  auto [it, inserted] =
      children_.emplace(label_values, Child{nullptr, absl::StrJoin(rendered, ",")});
  if (inserted) it->second.metric = make_child_();
  return it->second.metric;
}

template <typename Metric>
bool Family<Metric>::Remove(const std::vector<std::string>& label_values) {
  absl::MutexLock lock(&mu_);
  const bool removed = children_.erase(label_values) > 0;
  AddDefaultChildLocked();
  return removed;
}

template <typename Metric>
void Family<Metric>::RemoveAll() {
  absl::MutexLock lock(&mu_);
  children_.clear();
  AddDefaultChildLocked();
}

template <typename Metric>
size_t Family<Metric>::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return children_.size();
}

template <typename Metric>
void Family<Metric>::Render(std::string& out) const {
  absl::StrAppend(&out, "# HELP ", name(), " ", EscapeHelp(help()), "\n");
  absl::StrAppend(&out, "# TYPE ", name(), " ", MetricTypeName(type()), "\n");
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [values, child] : children_) {
    AppendChild(out, name(), child.rendered_labels, *child.metric);
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;
template class Family<Summary>;

absl::Status Registry::CheckNameFree(const std::string& name, MetricType type) const {
  // Every series name the new family writes must differ from every series name already written.
  std::vector<std::string> wanted = ImpliedSeriesNames(name, type);
  wanted.push_back(name);
  for (const auto& [existing_name, family] : families_) {
    std::vector<std::string> taken = ImpliedSeriesNames(existing_name, family->type());
    taken.push_back(existing_name);
    for (const std::string& w : wanted) {
      if (std::find(taken.begin(), taken.end(), w) != taken.end()) {
        return absl::AlreadyExistsError(
            absl::StrCat("metric ", name, ": series name ", w, " is already used by the ",
                         MetricTypeName(family->type()), " ", existing_name));
      }
    }
  }
  return absl::OkStatus();
}

template <typename Metric>
absl::StatusOr<Family<Metric>*> Registry::AddFamily(
    absl::string_view name, absl::string_view help, MetricType type,
    std::vector<std::string> label_names, absl::string_view reserved_label,
    std::function<std::shared_ptr<Metric>()> make_child) {
  MOECAP_RETURN_IF_ERROR(ValidateMetricName(name));
  MOECAP_RETURN_IF_ERROR(ValidateUtf8(absl::StrCat(name, " help"), help));
  MOECAP_RETURN_IF_ERROR(ValidateLabelNames(name, label_names, reserved_label));
  const std::string key(name);
  absl::MutexLock lock(&mu_);
  MOECAP_RETURN_IF_ERROR(CheckNameFree(key, type));
  auto* family = new Family<Metric>(key, std::string(help), type, std::move(label_names),
                                    std::move(make_child));
  families_.emplace(key, std::unique_ptr<FamilyBase>(family));
  return family;
}

absl::StatusOr<CounterFamily*> Registry::AddCounter(absl::string_view name, absl::string_view help,
                                                    std::vector<std::string> label_names) {
  return AddFamily<Counter>(name, help, MetricType::kCounter, std::move(label_names), "",
                            [] { return std::make_shared<Counter>(); });
}

absl::StatusOr<GaugeFamily*> Registry::AddGauge(absl::string_view name, absl::string_view help,
                                                std::vector<std::string> label_names) {
  return AddFamily<Gauge>(name, help, MetricType::kGauge, std::move(label_names), "",
                          [] { return std::make_shared<Gauge>(); });
}

absl::StatusOr<HistogramFamily*> Registry::AddHistogram(absl::string_view name,
                                                        absl::string_view help,
                                                        std::vector<std::string> label_names,
                                                        std::vector<double> upper_bounds) {
  for (size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": bucket bound ", i, " is ", FormatValue(upper_bounds[i]),
                       "; bounds must be finite (the +Inf bucket is always added)"));
    }
    if (i > 0 && !(upper_bounds[i] > upper_bounds[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": bucket bounds must be strictly increasing, but bound ", i, " (",
          FormatValue(upper_bounds[i]), ") follows ", FormatValue(upper_bounds[i - 1])));
    }
  }
  auto bounds = std::make_shared<const std::vector<double>>(std::move(upper_bounds));
  return AddFamily<Histogram>(name, help, MetricType::kHistogram, std::move(label_names), "le",
                              [bounds] { return std::make_shared<Histogram>(bounds); });
}

absl::StatusOr<SummaryFamily*> Registry::AddSummary(absl::string_view name, absl::string_view help,
                                                    std::vector<std::string> label_names,
                                                    std::vector<double> quantiles) {
  if (quantiles.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": a summary needs at least one quantile"));
  }
  for (size_t i = 0; i < quantiles.size(); ++i) {
    if (!(quantiles[i] >= 0 && quantiles[i] <= 1)) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": quantile ", i, " is ",
                                                     FormatValue(quantiles[i]),
                                                     "; quantiles must lie in [0, 1]"));
    }
    if (i > 0 && !(quantiles[i] > quantiles[i - 1])) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": quantiles must be strictly increasing, but quantile ", i, " (",
                       FormatValue(quantiles[i]), ") follows ", FormatValue(quantiles[i - 1])));
    }
  }
  auto shared = std::make_shared<const std::vector<double>>(std::move(quantiles));
  return AddFamily<Summary>(name, help, MetricType::kSummary, std::move(label_names), "quantile",
                            [shared] { return std::make_shared<Summary>(shared); });
}

absl::Status Registry::Register(const MetricDef& def) {
  std::vector<std::string> labels;
  if (!absl::string_view(def.labels).empty()) labels = absl::StrSplit(def.labels, ',');
  switch (def.type) {
    case MetricType::kCounter:
      return AddCounter(def.name, def.help, std::move(labels)).status();
    case MetricType::kGauge:
      return AddGauge(def.name, def.help, std::move(labels)).status();
    case MetricType::kHistogram:
      return AddHistogram(def.name, def.help, std::move(labels),
                          std::vector<double>(def.buckets.begin(), def.buckets.end()))
          .status();
    case MetricType::kSummary:
      return AddSummary(def.name, def.help, std::move(labels),
                        std::vector<double>(def.quantiles.begin(), def.quantiles.end()))
          .status();
  }
  return absl::InvalidArgumentError(absl::StrCat(def.name, ": unknown metric type"));
}

absl::Status Registry::Register(absl::Span<const MetricDef> defs) {
  for (const MetricDef& def : defs) {
    MOECAP_RETURN_IF_ERROR(Register(def));
  }
  return absl::OkStatus();
}

template <typename Metric>
absl::StatusOr<Family<Metric>*> Registry::GetFamily(absl::string_view name, MetricType type) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = families_.find(std::string(name));
  if (it == families_.end()) {
    return absl::NotFoundError(absl::StrCat("metric ", name, ": not registered"));
  }
  if (it->second->type() != type) {
    return absl::FailedPreconditionError(absl::StrCat("metric ", name, ": is a ",
                                                      MetricTypeName(it->second->type()),
                                                      ", not a ", MetricTypeName(type)));
  }
  return static_cast<Family<Metric>*>(it->second.get());
}

absl::StatusOr<CounterFamily*> Registry::GetCounter(absl::string_view name) const {
  return GetFamily<Counter>(name, MetricType::kCounter);
}
absl::StatusOr<GaugeFamily*> Registry::GetGauge(absl::string_view name) const {
  return GetFamily<Gauge>(name, MetricType::kGauge);
}
absl::StatusOr<HistogramFamily*> Registry::GetHistogram(absl::string_view name) const {
  return GetFamily<Histogram>(name, MetricType::kHistogram);
}
absl::StatusOr<SummaryFamily*> Registry::GetSummary(absl::string_view name) const {
  return GetFamily<Summary>(name, MetricType::kSummary);
}

void Registry::AddCollector(std::function<void()> collect) {
  absl::MutexLock lock(&mu_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::Render() const {
  std::vector<std::function<void()>> collectors;
  {
    absl::ReaderMutexLock lock(&mu_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect();
  std::string out;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, family] : families_) family->Render(out);
  return out;
}

}  // namespace moecap::telemetry
