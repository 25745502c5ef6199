// PointWorkload -> WorkloadConfig.
#include "agent/daemon/workload_convert.h"

#include "absl/strings/str_cat.h"
#include "common/plan/convert.h"

namespace moecap::agentd {
namespace {

// Collectives (and the rendezvous, which Gloo bounds with the same timeout) when the plan gives
// none: PointWorkload.timeouts' documented default.
constexpr double kDefaultCollectiveSeconds = 60;

absl::Status Refuse(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("workload.", field, ": ", why));
}

absl::StatusOr<RoutingSpec> RoutingFromProto(const v1::Routing& routing) {
  RoutingSpec spec;
  switch (routing.kind_case()) {
    case v1::Routing::KIND_NOT_SET:
    case v1::Routing::kGate:
      spec.mode = RoutingMode::kGate;
      break;
    case v1::Routing::kUniform:
      spec.mode = RoutingMode::kUniform;
      break;
    case v1::Routing::kZipf:
      spec.mode = RoutingMode::kZipf;
      spec.zipf_exponent = routing.zipf().has_exponent() ? routing.zipf().exponent() : 1.0;
      if (!(spec.zipf_exponent > 0)) {
        return Refuse("routing.zipf.exponent",
                      absl::StrCat("must be > 0, got ", spec.zipf_exponent));
      }
      if (routing.zipf().shuffle_experts()) {
        // The workload ranks popularity by expert id (hot experts on the first rank).
        return absl::UnimplementedError(
            "workload.routing.zipf.shuffle_experts: not supported by the CPU workload");
      }
      break;
    case v1::Routing::kHistogram:
      spec.mode = RoutingMode::kHistogram;
      if (routing.histogram().layers().empty()) {
        return Refuse("routing.histogram.layers", "needs at least one row of expert weights");
      }
      for (const v1::ExpertWeights& layer : routing.histogram().layers()) {
        spec.histogram.emplace_back(layer.weights().begin(), layer.weights().end());
      }
      break;
  }
  return spec;
}

}  // namespace

absl::StatusOr<WorkloadConfig> WorkloadConfigFromPoint(const v1::PointWorkload& point,
                                                       const Catalog& catalog,
                                                       int threads_per_rank) {
  WorkloadConfig config;
  if (point.has_model_spec()) {
    absl::StatusOr<ModelSpec> model = ModelSpecFromProto(point.model_spec());
    if (!model.ok()) return Refuse("model_spec", model.status().message());
    config.model = *std::move(model);
  } else if (!point.model().empty()) {
    absl::StatusOr<const ModelSpec*> model = catalog.FindModel(point.model());
    if (!model.ok()) return Refuse("model", model.status().message());
    config.model = **model;
  } else {
    return Refuse("model", "neither model nor model_spec is given");
  }

  switch (point.backend()) {
    case v1::BACKEND_UNSPECIFIED:
    case v1::BACKEND_CPU:
    case v1::BACKEND_ANY:
      break;
    case v1::BACKEND_CUDA:
      break;  // whether this agent runs it is the runner's call (it knows the agent's backend)
    default:
      return Refuse("backend", absl::StrCat("unknown value ", point.backend()));
  }

  if (point.phases().empty()) return Refuse("phases", "no phase to run");
  config.phases.clear();
  for (int phase : point.phases()) {
    switch (phase) {
      case v1::PHASE_PREFILL:
        config.phases.push_back(ServingPhase::kPrefill);
        break;
      case v1::PHASE_DECODE:
        config.phases.push_back(ServingPhase::kDecode);
        break;
      default:
        return Refuse("phases", absl::StrCat("unknown phase ", phase));
    }
  }
  if (point.batch_size() < 1) {
    return Refuse("batch_size", absl::StrCat("must be >= 1, got ", point.batch_size()));
  }
  config.batches = {point.batch_size()};
  config.prompt_len = point.prompt_len();
  config.layers = point.layers();
  config.scale = point.scale();
  if (point.dtype() == v1::DTYPE_UNSPECIFIED) {
    config.dtype = Dtype::kFp32;  // the CPU backend's default (docs/plans.md)
  } else if (std::optional<Dtype> dtype = DtypeFromProto(point.dtype()); dtype.has_value()) {
    config.dtype = *dtype;
  } else {
    return Refuse("dtype", absl::StrCat("unknown value ", point.dtype()));
  }
  absl::StatusOr<RoutingSpec> routing = RoutingFromProto(point.routing());
  if (!routing.ok()) return routing.status();
  config.routing = *std::move(routing);
  config.seed = point.seed();
  config.warmup = point.warmup();
  config.iterations = point.iterations();
  config.check = point.check();
  config.threads_per_rank = threads_per_rank;
  config.comm_timeout_s = point.timeouts().has_collective_seconds()
                              ? point.timeouts().collective_seconds()
                              : kDefaultCollectiveSeconds;
  if (!(config.comm_timeout_s > 0)) {
    return Refuse("timeouts.collective_seconds",
                  absl::StrCat("must be > 0, got ", config.comm_timeout_s));
  }
  return config;
}

}  // namespace moecap::agentd
