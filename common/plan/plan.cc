// Plans: parsing (through yaml_proto), defaults, validation and sweep expansion.
#include "common/plan/plan.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/dtype.h"
#include "common/hardware.h"
#include "common/plan/convert.h"
#include "common/plan/yaml_proto.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

absl::Status FieldError(absl::string_view path, absl::string_view reason) {
  return absl::InvalidArgumentError(absl::StrCat("field '", path, "': ", reason));
}

// Keeps the status code (NotFound for unknown names) and puts the field in front.
absl::Status WithField(absl::string_view path, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("field '", path, "': ", status.message()));
}

std::string Index(absl::string_view path, int i) { return absl::StrCat(path, "[", i, "]"); }

bool HasBatchAxis(const v1::Plan& plan) {
  for (const v1::SweepAxis& axis : plan.sweeps()) {
    if (axis.has_batch_sizes()) return true;
  }
  return false;
}

bool HasPhase(const v1::Workload& w, v1::Phase phase) {
  for (int p : w.phases()) {
    if (p == phase) return true;
  }
  return false;
}

std::string PhaseName(int phase) {
  return v1::Phase_IsValid(phase)
             ? EnumValueShortName(*v1::Phase_descriptor()->FindValueByNumber(phase))
             : absl::StrCat(phase);
}

std::string DtypeText(int dtype) {
  return v1::Dtype_IsValid(dtype)
             ? EnumValueShortName(*v1::Dtype_descriptor()->FindValueByNumber(dtype))
             : absl::StrCat(dtype);
}

void DefaultRouting(v1::Routing* routing) {
  if (routing->kind_case() == v1::Routing::KIND_NOT_SET) routing->mutable_gate();
  if (routing->has_zipf() && !routing->zipf().has_exponent()) {
    routing->mutable_zipf()->set_exponent(kDefaultZipfExponent);
  }
}

// Everything ValidatePlan checks, on a plan with defaults applied.
class PlanValidator {
 public:
  PlanValidator(const v1::Plan& plan, const Catalog& catalog) : plan_(plan), catalog_(catalog) {}

  absl::Status Run() {
    MOECAP_RETURN_IF_ERROR(CheckModel());
    MOECAP_RETURN_IF_ERROR(CheckHardware());
    MOECAP_RETURN_IF_ERROR(CheckParallelism());
    MOECAP_RETURN_IF_ERROR(CheckWorkload());
    MOECAP_RETURN_IF_ERROR(CheckSweeps());
    MOECAP_RETURN_IF_ERROR(CheckPricingAndPolicy());
    const int64_t points = CountPlanPoints(plan_);
    if (points > kMaxPlanPoints) {
      return FieldError("sweeps", absl::StrCat("the plan expands into more than ", kMaxPlanPoints,
                                               " points; narrow the sweeps"));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status CheckModel() {
    if (plan_.has_model_override()) {
      absl::StatusOr<ModelSpec> m = ModelSpecFromProto(plan_.model_override());
      if (!m.ok()) return WithField("model_override", m.status());
      if (NormalizeName(plan_.model_override().name()) != NormalizeName(plan_.model())) {
        return FieldError("model_override.name",
                          absl::StrCat("'", plan_.model_override().name(), "' differs from model '",
                                       plan_.model(), "'; give one name"));
      }
      model_ = *std::move(m);
      return absl::OkStatus();
    }
    if (plan_.model().empty()) {
      return FieldError("model",
                        "required: a catalog model name (`moecapctl models` lists them), or give "
                        "model_override");
    }
    absl::StatusOr<const ModelSpec*> m = catalog_.FindModel(plan_.model());
    if (!m.ok()) return WithField("model", m.status());
    model_ = **m;
    return absl::OkStatus();
  }

  absl::Status CheckHardware() {
    const v1::HardwareRequirements& hw = plan_.hardware();
    if (!v1::Backend_IsValid(hw.backend())) {
      return FieldError("hardware.backend", "must be cpu, cuda or any");
    }
    if (!v1::PeakSource_IsValid(hw.peak_source())) {
      return FieldError("hardware.peak_source", "must be catalog, measured or given");
    }
    if (hw.hardware().empty()) return absl::OkStatus();
    absl::StatusOr<const HardwareSpec*> spec = catalog_.FindHardware(hw.hardware());
    if (!spec.ok()) return WithField("hardware.hardware", spec.status());
    hardware_ = *spec;
    if (hardware_->kind == DeviceKind::kGpu && hw.backend() == v1::BACKEND_CPU) {
      return FieldError(
          "hardware.hardware",
          absl::StrCat("'", hardware_->name, "' is a GPU but hardware.backend is cpu"));
    }
    if (hardware_->kind == DeviceKind::kCpu && hw.backend() == v1::BACKEND_CUDA) {
      return FieldError(
          "hardware.hardware",
          absl::StrCat("'", hardware_->name, "' is a CPU but hardware.backend is cuda"));
    }
    return absl::OkStatus();
  }

  absl::Status CheckParallelism() {
    const v1::Parallelism& par = plan_.parallelism();
    if (par.nodes() < 1) {
      return FieldError("parallelism.nodes", absl::StrCat("must be >= 1, got ", par.nodes()));
    }
    if (par.devices_per_node() < 1) {
      return FieldError("parallelism.devices_per_node",
                        absl::StrCat("must be >= 1, got ", par.devices_per_node()));
    }
    ranks_ = int64_t{par.nodes()} * par.devices_per_node();
    return CheckExpertParallel("parallelism.expert_parallel", par.expert_parallel());
  }

  absl::Status CheckExpertParallel(absl::string_view path, int64_t ep) const {
    if (ep < 1 || ep > ranks_) {
      return FieldError(path, absl::StrCat("must be between 1 and parallelism.nodes × "
                                           "parallelism.devices_per_node (",
                                           ranks_, "), got ", ep));
    }
    const int64_t experts = model_.experts;
    if (ep > experts) {
      if (!plan_.parallelism().allow_expert_replication()) {
        return FieldError(path, absl::StrCat(ep, " ranks exceed the model's ", experts,
                                             " experts; set parallelism.allow_expert_replication: "
                                             "true to replicate experts"));
      }
      if (ep % experts != 0) {
        return FieldError(path,
                          absl::StrCat(ep, " ranks cannot hold replicas of the model's ", experts,
                                       " experts evenly (use a multiple of ", experts, ")"));
      }
    } else if (experts % ep != 0) {
      return FieldError(path,
                        absl::StrCat("the model's ", experts, " experts are not divisible by ", ep,
                                     " ranks (use a divisor of ", experts, ")"));
    }
    return absl::OkStatus();
  }

  absl::Status CheckWorkload() {
    const v1::Workload& w = plan_.workload();
    std::set<int> phases;
    for (int i = 0; i < w.phases_size(); ++i) {
      const int phase = w.phases(i);
      if (phase != v1::PHASE_PREFILL && phase != v1::PHASE_DECODE) {
        return FieldError(Index("workload.phases", i), "must be prefill or decode");
      }
      if (!phases.insert(phase).second) {
        return FieldError(Index("workload.phases", i),
                          absl::StrCat("'", PhaseName(phase), "' is given twice"));
      }
    }
    for (int i = 0; i < w.batch_sizes_size(); ++i) {
      MOECAP_RETURN_IF_ERROR(CheckBatch(Index("workload.batch_sizes", i), w.batch_sizes(i)));
    }
    MOECAP_RETURN_IF_ERROR(CheckPromptLen("workload.prompt_len", w.prompt_len()));
    MOECAP_RETURN_IF_ERROR(CheckOutputLen("workload.output_len", w.output_len()));
    MOECAP_RETURN_IF_ERROR(CheckLayers("workload.layers", w.layers()));
    if (w.dense_layers() < 0) {
      return FieldError("workload.dense_layers",
                        absl::StrCat("must be >= 0, got ", w.dense_layers()));
    }
    MOECAP_RETURN_IF_ERROR(CheckScale("workload.scale", w.scale()));
    MOECAP_RETURN_IF_ERROR(CheckDtype("workload.dtype", w.dtype()));
    if (w.warmup() < 0) {
      return FieldError("workload.warmup", absl::StrCat("must be >= 0, got ", w.warmup()));
    }
    if (w.iterations() < 1) {
      return FieldError("workload.iterations", absl::StrCat("must be >= 1, got ", w.iterations()));
    }
    MOECAP_RETURN_IF_ERROR(CheckRouting("workload.routing", w.routing()));
    const v1::Timeouts& t = w.timeouts();
    const std::pair<const char*, std::optional<double>> timeouts[] = {
        {"queue_seconds", t.has_queue_seconds() ? std::optional(t.queue_seconds()) : std::nullopt},
        {"rendezvous_seconds", t.rendezvous_seconds()},
        {"collective_seconds", t.collective_seconds()},
        {"point_seconds", t.point_seconds()},
    };
    for (const auto& [name, value] : timeouts) {
      if (value && !(*value > 0)) {
        return FieldError(absl::StrCat("workload.timeouts.", name),
                          absl::StrCat("must be > 0 seconds, got ", *value));
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckBatch(absl::string_view path, int64_t batch) const {
    if (batch < 1) return FieldError(path, absl::StrCat("must be >= 1, got ", batch));
    return absl::OkStatus();
  }
  absl::Status CheckPromptLen(absl::string_view path, int64_t len) const {
    if (len < 1) return FieldError(path, absl::StrCat("must be >= 1, got ", len));
    return absl::OkStatus();
  }
  absl::Status CheckOutputLen(absl::string_view path, int64_t len) const {
    if (len < 1) return FieldError(path, absl::StrCat("must be >= 1, got ", len));
    if (len < 2 && HasPhase(plan_.workload(), v1::PHASE_DECODE)) {
      return FieldError(path, absl::StrCat("decode needs at least 2 output tokens (the prefill "
                                           "emits the first), got ",
                                           len, "; or leave decode out of workload.phases"));
    }
    return absl::OkStatus();
  }
  absl::Status CheckLayers(absl::string_view path, int64_t layers) const {
    if (layers < 1) return FieldError(path, absl::StrCat("must be >= 1, got ", layers));
    return absl::OkStatus();
  }
  absl::Status CheckScale(absl::string_view path, int64_t scale) const {
    if (scale < 1) return FieldError(path, absl::StrCat("must be >= 1, got ", scale));
    const std::pair<const char*, int64_t> sizes[] = {
        {"hidden_size", model_.hidden_size},
        {"moe.expert_ffn_size", model_.expert_ffn_size},
        {"moe.shared_expert_ffn_size",
         model_.shared_experts > 0 ? model_.shared_expert_ffn_size : 0},
    };
    for (const auto& [name, size] : sizes) {
      if (size > 0 && size / scale < 1) {
        return FieldError(path, absl::StrCat("scale ", scale, " shrinks the model's ", name, " (",
                                             size, ") to 0"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckDtype(absl::string_view path, int dtype) const {
    if (!v1::Dtype_IsValid(dtype) || dtype == v1::DTYPE_UNSPECIFIED) {
      return FieldError(path, "must be one of fp32, bf16, fp16, fp8");
    }
    if (absl::Status s =
            CheckBackendRunsDtype(plan_.hardware().backend(), static_cast<v1::Dtype>(dtype));
        !s.ok()) {
      return FieldError(path, s.message());
    }
    if (hardware_ != nullptr && !hardware_->peak_flops.empty()) {
      std::optional<Dtype> d = DtypeFromProto(static_cast<v1::Dtype>(dtype));
      if (!hardware_->peak_flops.contains(*d)) {
        return FieldError(path,
                          absl::StrCat("hardware '", hardware_->name, "' does not support ",
                                       DtypeText(dtype), " (the catalog has no peak for it)"));
      }
    }
    return absl::OkStatus();
  }

  // The stacked-layer counts the plan runs with (a histogram needs one entry or one per layer).
  std::vector<int64_t> LayerValues() const {
    for (const v1::SweepAxis& axis : plan_.sweeps()) {
      if (axis.has_layers()) return {axis.layers().values().begin(), axis.layers().values().end()};
    }
    return {plan_.workload().layers()};
  }

  absl::Status CheckRouting(const std::string& path, const v1::Routing& routing) const {
    switch (routing.kind_case()) {
      case v1::Routing::KIND_NOT_SET:
        return FieldError(path, "empty: give one of gate, uniform, zipf, histogram");
      case v1::Routing::kGate:
      case v1::Routing::kUniform:
        return absl::OkStatus();
      case v1::Routing::kZipf: {
        const double s = routing.zipf().exponent();
        if (!(s > 0) || !std::isfinite(s)) {
          return FieldError(absl::StrCat(path, ".zipf.exponent"),
                            absl::StrCat("must be > 0, got ", s));
        }
        return absl::OkStatus();
      }
      case v1::Routing::kHistogram:
        return CheckHistogram(absl::StrCat(path, ".histogram.layers"), routing.histogram());
    }
    return absl::OkStatus();
  }

  absl::Status CheckHistogram(const std::string& path, const v1::HistogramRouting& h) const {
    if (h.layers_size() == 0) {
      return FieldError(path, absl::StrCat("empty: give one list of ", model_.experts,
                                           " expert weights, or one per stacked layer"));
    }
    if (h.layers_size() > 1) {
      for (int64_t layers : LayerValues()) {
        if (layers != h.layers_size()) {
          return FieldError(path, absl::StrCat("has ", h.layers_size(),
                                               " layer entries; expected 1 or one per stacked "
                                               "layer (",
                                               layers, ")"));
        }
      }
    }
    for (int l = 0; l < h.layers_size(); ++l) {
      const auto& weights = h.layers(l).weights();
      const std::string entry = Index(path, l);
      if (weights.size() != model_.experts) {
        return FieldError(entry, absl::StrCat("has ", weights.size(), " weights; the model has ",
                                              model_.experts, " experts"));
      }
      double sum = 0;
      for (int e = 0; e < weights.size(); ++e) {
        if (!(weights[e] >= 0) || !std::isfinite(weights[e])) {
          return FieldError(Index(entry, e), absl::StrCat("must be >= 0, got ", weights[e]));
        }
        sum += weights[e];
      }
      if (!(sum > 0)) return FieldError(entry, "all weights are 0");
    }
    return absl::OkStatus();
  }

  absl::Status CheckSweeps() {
    std::map<int, int> axis_index;  // axis kind -> first sweeps[] index
    for (int i = 0; i < plan_.sweeps_size(); ++i) {
      const v1::SweepAxis& axis = plan_.sweeps(i);
      const std::string path = Index("sweeps", i);
      if (axis.axis_case() == v1::SweepAxis::AXIS_NOT_SET) {
        return FieldError(path,
                          "empty axis: give one of batch_sizes, prompt_len, output_len, dtype, "
                          "expert_parallel, layers, scale, routing");
      }
      const google::protobuf::FieldDescriptor* field =
          v1::SweepAxis::descriptor()->FindFieldByNumber(axis.axis_case());
      const std::string axis_path = absl::StrCat(path, ".", field->name());
      auto [it, inserted] = axis_index.emplace(axis.axis_case(), i);
      if (!inserted) {
        return FieldError(axis_path,
                          absl::StrCat("axis given twice (also in sweeps[", it->second, "])"));
      }
      MOECAP_RETURN_IF_ERROR(CheckAxis(axis, axis_path));
    }
    return absl::OkStatus();
  }

  absl::Status CheckAxis(const v1::SweepAxis& axis, const std::string& path) const {
    using Check = std::function<absl::Status(const std::string&, int64_t)>;
    const auto ints = [&](const v1::Int64Values& values, const Check& check) -> absl::Status {
      if (values.values_size() == 0) return FieldError(path, "no values");
      for (int k = 0; k < values.values_size(); ++k) {
        MOECAP_RETURN_IF_ERROR(check(Index(path, k), values.values(k)));
      }
      return absl::OkStatus();
    };
    switch (axis.axis_case()) {
      case v1::SweepAxis::kBatchSizes:
        return ints(axis.batch_sizes(),
                    [&](const std::string& p, int64_t v) { return CheckBatch(p, v); });
      case v1::SweepAxis::kPromptLen:
        return ints(axis.prompt_len(),
                    [&](const std::string& p, int64_t v) { return CheckPromptLen(p, v); });
      case v1::SweepAxis::kOutputLen:
        return ints(axis.output_len(),
                    [&](const std::string& p, int64_t v) { return CheckOutputLen(p, v); });
      case v1::SweepAxis::kExpertParallel:
        return ints(axis.expert_parallel(),
                    [&](const std::string& p, int64_t v) { return CheckExpertParallel(p, v); });
      case v1::SweepAxis::kLayers:
        return ints(axis.layers(),
                    [&](const std::string& p, int64_t v) { return CheckLayers(p, v); });
      case v1::SweepAxis::kScale:
        return ints(axis.scale(),
                    [&](const std::string& p, int64_t v) { return CheckScale(p, v); });
      case v1::SweepAxis::kDtype:
        if (axis.dtype().values_size() == 0) return FieldError(path, "no values");
        for (int k = 0; k < axis.dtype().values_size(); ++k) {
          MOECAP_RETURN_IF_ERROR(CheckDtype(Index(path, k), axis.dtype().values(k)));
        }
        return absl::OkStatus();
      case v1::SweepAxis::kRouting:
        if (axis.routing().values_size() == 0) return FieldError(path, "no values");
        for (int k = 0; k < axis.routing().values_size(); ++k) {
          MOECAP_RETURN_IF_ERROR(CheckRouting(Index(path, k), axis.routing().values(k)));
        }
        return absl::OkStatus();
      case v1::SweepAxis::AXIS_NOT_SET:
        break;
    }
    return absl::OkStatus();
  }

  absl::Status CheckPricingAndPolicy() const {
    const v1::Pricing& pricing = plan_.pricing();
    if (pricing.has_usd_per_device_hour() && !(pricing.usd_per_device_hour() >= 0)) {
      return FieldError("pricing.usd_per_device_hour",
                        absl::StrCat("must be >= 0, got ", pricing.usd_per_device_hour()));
    }
    if (pricing.has_amortize_hours() && !(pricing.amortize_hours() > 0)) {
      return FieldError("pricing.amortize_hours",
                        absl::StrCat("must be > 0, got ", pricing.amortize_hours()));
    }
    if (!(pricing.usd_per_kwh() >= 0)) {
      return FieldError("pricing.usd_per_kwh",
                        absl::StrCat("must be >= 0, got ", pricing.usd_per_kwh()));
    }
    if (plan_.retry().max_retries() < 0 || plan_.retry().max_retries() > 100) {
      return FieldError("retry.max_retries", absl::StrCat("must be between 0 and 100, got ",
                                                          plan_.retry().max_retries()));
    }
    for (const auto& [key, value] : plan_.labels()) {
      if (key.empty()) return FieldError("labels", "a label name is empty");
    }
    return absl::OkStatus();
  }

  const v1::Plan& plan_;
  const Catalog& catalog_;
  ModelSpec model_;
  const HardwareSpec* hardware_ = nullptr;
  int64_t ranks_ = 0;
};

// One value of a sweep axis: its text for PointParameter and how it changes the workload.
struct AxisValue {
  std::string text;
  std::function<void(v1::PointWorkload*)> apply;
};
struct Axis {
  std::string name;
  std::vector<AxisValue> values;
};

std::vector<Axis> BuildAxes(const v1::Plan& plan) {
  std::vector<Axis> axes;
  const auto int_axis = [](std::string name, const auto& values, auto setter) {
    Axis axis{std::move(name), {}};
    for (int64_t v : values) {
      axis.values.push_back({absl::StrCat(v), [v, setter](v1::PointWorkload* w) { setter(w, v); }});
    }
    return axis;
  };
  for (const v1::SweepAxis& s : plan.sweeps()) {
    switch (s.axis_case()) {
      case v1::SweepAxis::kBatchSizes:
        axes.push_back(int_axis("batch_size", s.batch_sizes().values(),
                                [](v1::PointWorkload* w, int64_t v) { w->set_batch_size(v); }));
        break;
      case v1::SweepAxis::kPromptLen:
        axes.push_back(int_axis("prompt_len", s.prompt_len().values(),
                                [](v1::PointWorkload* w, int64_t v) { w->set_prompt_len(v); }));
        break;
      case v1::SweepAxis::kOutputLen:
        axes.push_back(int_axis("output_len", s.output_len().values(),
                                [](v1::PointWorkload* w, int64_t v) { w->set_output_len(v); }));
        break;
      case v1::SweepAxis::kExpertParallel:
        axes.push_back(int_axis("expert_parallel", s.expert_parallel().values(),
                                [](v1::PointWorkload* w, int64_t v) {
                                  w->set_expert_parallel(static_cast<int32_t>(v));
                                }));
        break;
      case v1::SweepAxis::kLayers:
        axes.push_back(int_axis("layers", s.layers().values(),
                                [](v1::PointWorkload* w, int64_t v) { w->set_layers(v); }));
        break;
      case v1::SweepAxis::kScale:
        axes.push_back(int_axis("scale", s.scale().values(),
                                [](v1::PointWorkload* w, int64_t v) { w->set_scale(v); }));
        break;
      case v1::SweepAxis::kDtype: {
        Axis axis{"dtype", {}};
        for (int v : s.dtype().values()) {
          axis.values.push_back({DtypeText(v), [v](v1::PointWorkload* w) {
                                   w->set_dtype(static_cast<v1::Dtype>(v));
                                 }});
        }
        axes.push_back(std::move(axis));
        break;
      }
      case v1::SweepAxis::kRouting: {
        Axis axis{"routing", {}};
        for (int k = 0; k < s.routing().values_size(); ++k) {
          const v1::Routing& r = s.routing().values(k);
          std::string text = RoutingName(r);
          // Two histograms would print alike: number them by their place in the axis.
          if (r.has_histogram()) text = absl::StrCat(text, "#", k);
          axis.values.push_back({text, [r](v1::PointWorkload* w) { *w->mutable_routing() = r; }});
        }
        axes.push_back(std::move(axis));
        break;
      }
      case v1::SweepAxis::AXIS_NOT_SET:
        break;
    }
  }
  if (!HasBatchAxis(plan)) {
    axes.push_back(int_axis("batch_size", plan.workload().batch_sizes(),
                            [](v1::PointWorkload* w, int64_t v) { w->set_batch_size(v); }));
  }
  return axes;
}

v1::PointWorkload BaseWorkload(const v1::Plan& plan) {
  const v1::Workload& w = plan.workload();
  v1::PointWorkload p;
  p.set_model(plan.model());
  if (plan.has_model_override()) *p.mutable_model_spec() = plan.model_override();
  p.set_backend(plan.hardware().backend());
  p.set_hardware(plan.hardware().hardware());
  p.set_peak_source(plan.hardware().peak_source());
  *p.mutable_phases() = w.phases();
  p.set_prompt_len(w.prompt_len());
  p.set_output_len(w.output_len());
  p.set_layers(w.layers());
  p.set_scale(w.scale());
  p.set_dtype(w.dtype());
  *p.mutable_routing() = w.routing();
  p.set_seed(w.seed());
  p.set_warmup(w.warmup());
  p.set_iterations(w.iterations());
  p.set_check(w.check());
  *p.mutable_timeouts() = w.timeouts();
  p.set_layer(w.layer());
  p.set_lm_head(w.lm_head());
  p.set_dense_layers(w.dense_layers());
  p.set_expert_parallel(plan.parallelism().expert_parallel());
  p.set_allow_expert_replication(plan.parallelism().allow_expert_replication());
  return p;
}

absl::StatusOr<std::vector<v1::PlanPoint>> Expand(const v1::Plan& input, const Catalog* catalog) {
  v1::Plan plan = input;
  ApplyPlanDefaults(&plan);
  v1::PointWorkload base = BaseWorkload(plan);
  if (catalog != nullptr) {
    absl::StatusOr<ModelSpec> model = ResolvePlanModel(plan, *catalog);
    if (!model.ok()) return model.status();
    base.set_model(model->name);
    *base.mutable_model_spec() = ModelSpecToProto(*model);
  }
  const std::vector<Axis> axes = BuildAxes(plan);
  int64_t total = 1;
  for (size_t a = 0; a < axes.size(); ++a) {
    if (axes[a].values.empty()) {
      return FieldError(a + 1 == axes.size() && !HasBatchAxis(plan)
                            ? std::string("workload.batch_sizes")
                            : std::string("sweeps"),
                        absl::StrCat("axis '", axes[a].name, "' has no values"));
    }
    total *= static_cast<int64_t>(axes[a].values.size());
    if (total > kMaxPlanPoints) {
      return FieldError("sweeps", absl::StrCat("the plan expands into more than ", kMaxPlanPoints,
                                               " points; narrow the sweeps"));
    }
  }
  std::vector<v1::PlanPoint> points;
  points.reserve(total);
  for (int64_t index = 0; index < total; ++index) {
    v1::PlanPoint point;
    point.set_index(static_cast<int32_t>(index));
    *point.mutable_workload() = base;
    // Mixed-radix digits of `index`, the last axis fastest.
    std::vector<size_t> digit(axes.size());
    int64_t rest = index;
    for (size_t a = axes.size(); a-- > 0;) {
      digit[a] = static_cast<size_t>(rest % static_cast<int64_t>(axes[a].values.size()));
      rest /= static_cast<int64_t>(axes[a].values.size());
    }
    for (size_t a = 0; a < axes.size(); ++a) {
      const AxisValue& v = axes[a].values[digit[a]];
      v.apply(point.mutable_workload());
      v1::PointParameter* param = point.add_parameters();
      param->set_name(axes[a].name);
      param->set_value(v.text);
    }
    points.push_back(std::move(point));
  }
  return points;
}

}  // namespace

absl::Status CheckBackendRunsDtype(v1::Backend backend, v1::Dtype dtype) {
  // OpenBLAS sgemm/sbgemm on the CPU, the GPU engine's cuBLAS GEMMs and kernels: fp32 and bf16
  // on both, so BACKEND_ANY (either) is the same set.
  if (dtype == v1::DTYPE_FP32 || dtype == v1::DTYPE_BF16) return absl::OkStatus();
  const std::string which = backend == v1::BACKEND_CPU    ? "the cpu backend"
                            : backend == v1::BACKEND_CUDA ? "the cuda backend"
                                                          : "either backend";
  return absl::InvalidArgumentError(
      absl::StrCat(DtypeText(dtype), " is not supported by ", which,
                   " (supported: fp32, bf16; `moecapctl analyze` computes the figures of an ",
                   DtypeText(dtype), " model without running it)"));
}

absl::StatusOr<v1::Plan> ParsePlanYaml(absl::string_view yaml, absl::string_view origin) {
  YamlProtoOptions options;
  options.enum_alias = [](const google::protobuf::EnumDescriptor& e,
                          absl::string_view text) -> std::optional<int> {
    if (&e != v1::Dtype_descriptor()) return std::nullopt;
    absl::StatusOr<Dtype> dtype = ParseDtype(text);
    if (!dtype.ok()) return std::nullopt;
    return DtypeToProto(*dtype);
  };
  v1::Plan plan;
  MOECAP_RETURN_IF_ERROR(ParseYamlToMessage(yaml, origin, options, &plan));
  return plan;
}

std::string PlanToYaml(const v1::Plan& plan) { return MessageToYaml(plan); }

void ApplyPlanDefaults(v1::Plan* plan) {
  if (plan->model().empty() && plan->has_model_override()) {
    plan->set_model(plan->model_override().name());
  }
  if (plan->has_model_override() && plan->model_override().name().empty()) {
    plan->mutable_model_override()->set_name(plan->model());
  }
  if (plan->name().empty()) plan->set_name(plan->model());

  v1::HardwareRequirements* hw = plan->mutable_hardware();
  if (hw->backend() == v1::BACKEND_UNSPECIFIED) hw->set_backend(v1::BACKEND_ANY);

  v1::Parallelism* par = plan->mutable_parallelism();
  if (!par->has_nodes()) par->set_nodes(1);
  if (!par->has_devices_per_node()) par->set_devices_per_node(1);
  if (!par->has_expert_parallel()) {
    // In 64 bits: nodes × devices_per_node may not fit in 32 (then ValidatePlan refuses it).
    const int64_t ranks = int64_t{par->nodes()} * par->devices_per_node();
    par->set_expert_parallel(static_cast<int32_t>(std::clamp<int64_t>(
        ranks, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max())));
  }

  v1::Workload* w = plan->mutable_workload();
  if (w->phases().empty()) {
    w->add_phases(v1::PHASE_PREFILL);
    w->add_phases(v1::PHASE_DECODE);
  }
  if (w->batch_sizes().empty() && !HasBatchAxis(*plan)) w->add_batch_sizes(1);
  if (!w->has_prompt_len()) w->set_prompt_len(kDefaultPromptLen);
  if (!w->has_output_len()) w->set_output_len(kDefaultOutputLen);
  if (!w->has_layers()) w->set_layers(1);
  // Decoder layers where the engine runs them (cpu); the MoE blocks alone where a GPU may run the
  // point, until the GPU engine has attention (docs/plans.md).
  if (w->layer() == v1::LAYER_UNSPECIFIED) {
    w->set_layer(hw->backend() == v1::BACKEND_CPU ? v1::LAYER_DECODER : v1::LAYER_MOE);
  }
  if (!w->has_scale()) w->set_scale(1);
  if (w->dtype() == v1::DTYPE_UNSPECIFIED) {
    w->set_dtype(hw->backend() == v1::BACKEND_CUDA ? v1::DTYPE_BF16 : v1::DTYPE_FP32);
  }
  DefaultRouting(w->mutable_routing());
  if (!w->has_seed()) w->set_seed(kDefaultSeed);
  if (!w->has_warmup()) w->set_warmup(kDefaultWarmup);
  if (!w->has_iterations()) w->set_iterations(kDefaultIterations);
  if (!w->has_check()) w->set_check(false);
  v1::Timeouts* t = w->mutable_timeouts();
  if (!t->has_rendezvous_seconds()) t->set_rendezvous_seconds(kDefaultRendezvousSeconds);
  if (!t->has_collective_seconds()) t->set_collective_seconds(kDefaultCollectiveSeconds);
  if (!t->has_point_seconds()) t->set_point_seconds(kDefaultPointSeconds);

  for (v1::SweepAxis& axis : *plan->mutable_sweeps()) {
    if (!axis.has_routing()) continue;
    for (v1::Routing& r : *axis.mutable_routing()->mutable_values()) {
      if (r.kind_case() != v1::Routing::KIND_NOT_SET) DefaultRouting(&r);
    }
  }

  v1::Pricing* pricing = plan->mutable_pricing();
  if (!pricing->has_usd_per_kwh()) pricing->set_usd_per_kwh(kDefaultUsdPerKwh);
  plan->mutable_retry();
}

absl::Status ValidatePlan(const v1::Plan& plan, const Catalog& catalog, absl::string_view origin) {
  absl::Status status;
  // Checks on the plan as written, before defaults hide what was given.
  if (!plan.workload().batch_sizes().empty()) {
    for (int i = 0; i < plan.sweeps_size() && status.ok(); ++i) {
      if (plan.sweeps(i).has_batch_sizes()) {
        status = FieldError(absl::StrCat("sweeps[", i, "].batch_sizes"),
                            "batch sizes are also given in workload.batch_sizes; keep one");
      }
    }
  }
  if (status.ok()) {
    v1::Plan defaulted = plan;
    ApplyPlanDefaults(&defaulted);
    status = PlanValidator(defaulted, catalog).Run();
  }
  if (status.ok() || origin.empty()) return status;
  return absl::Status(status.code(), absl::StrCat(origin, ": ", status.message()));
}

absl::StatusOr<ModelSpec> ResolvePlanModel(const v1::Plan& plan, const Catalog& catalog) {
  if (plan.has_model_override()) {
    v1::ModelSpec spec = plan.model_override();
    if (spec.name().empty()) spec.set_name(plan.model());
    absl::StatusOr<ModelSpec> m = ModelSpecFromProto(spec);
    if (!m.ok()) return WithField("model_override", m.status());
    return m;
  }
  absl::StatusOr<const ModelSpec*> m = catalog.FindModel(plan.model());
  if (!m.ok()) return WithField("model", m.status());
  return **m;
}

absl::StatusOr<std::vector<v1::PlanPoint>> ExpandSweeps(const v1::Plan& plan) {
  return Expand(plan, nullptr);
}

absl::StatusOr<std::vector<v1::PlanPoint>> ExpandSweeps(const v1::Plan& plan,
                                                        const Catalog& catalog) {
  return Expand(plan, &catalog);
}

int64_t CountPlanPoints(const v1::Plan& plan) {
  int64_t total = 1;
  const auto times = [&total](int64_t n) {
    total = total > kMaxPlanPoints ? total : total * n;
    if (total > kMaxPlanPoints) total = kMaxPlanPoints + 1;
  };
  for (const v1::SweepAxis& axis : plan.sweeps()) {
    switch (axis.axis_case()) {
      case v1::SweepAxis::kBatchSizes:
        times(axis.batch_sizes().values_size());
        break;
      case v1::SweepAxis::kPromptLen:
        times(axis.prompt_len().values_size());
        break;
      case v1::SweepAxis::kOutputLen:
        times(axis.output_len().values_size());
        break;
      case v1::SweepAxis::kDtype:
        times(axis.dtype().values_size());
        break;
      case v1::SweepAxis::kExpertParallel:
        times(axis.expert_parallel().values_size());
        break;
      case v1::SweepAxis::kLayers:
        times(axis.layers().values_size());
        break;
      case v1::SweepAxis::kScale:
        times(axis.scale().values_size());
        break;
      case v1::SweepAxis::kRouting:
        times(axis.routing().values_size());
        break;
      case v1::SweepAxis::AXIS_NOT_SET:
        break;
    }
  }
  if (!HasBatchAxis(plan)) times(std::max(1, plan.workload().batch_sizes_size()));
  return total;
}

std::string RoutingName(const v1::Routing& routing) {
  switch (routing.kind_case()) {
    case v1::Routing::kGate:
      return "gate";
    case v1::Routing::kUniform:
      return "uniform";
    case v1::Routing::kZipf:
      return absl::StrCat("zipf(", routing.zipf().exponent(),
                          routing.zipf().shuffle_experts() ? ",shuffled" : "", ")");
    case v1::Routing::kHistogram:
      return "histogram";
    case v1::Routing::KIND_NOT_SET:
      break;
  }
  return "gate";
}

}  // namespace moecap
