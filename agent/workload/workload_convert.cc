// PointWorkload <-> WorkloadConfig.
#include "agent/workload/workload_convert.h"

#include "absl/strings/str_cat.h"
#include "common/plan/convert.h"
#include "common/status_macros.h"

namespace moecap {
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

v1::Routing RoutingToProto(const RoutingSpec& spec) {
  v1::Routing routing;
  switch (spec.mode) {
    case RoutingMode::kGate:
      routing.mutable_gate();
      break;
    case RoutingMode::kUniform:
      routing.mutable_uniform();
      break;
    case RoutingMode::kZipf:
      routing.mutable_zipf()->set_exponent(spec.zipf_exponent);
      break;
    case RoutingMode::kHistogram:
      for (const std::vector<double>& layer : spec.histogram) {
        routing.mutable_histogram()->add_layers()->mutable_weights()->Add(layer.begin(),
                                                                          layer.end());
      }
      break;
  }
  return routing;
}

v1::Phase PhaseToProto(ServingPhase phase) {
  return phase == ServingPhase::kPrefill ? v1::PHASE_PREFILL : v1::PHASE_DECODE;
}

}  // namespace

v1::PointWorkload PointWorkloadOf(const WorkloadConfig& config, int64_t batch, int world_size) {
  v1::PointWorkload w;
  w.set_model(config.model.name);
  *w.mutable_model_spec() = ModelSpecToProto(config.model);
  for (ServingPhase phase : config.phases) w.add_phases(PhaseToProto(phase));
  w.set_batch_size(batch);
  w.set_prompt_len(config.prompt_len);
  w.set_output_len(config.output_len);
  w.set_layer(config.layer == LayerKind::kDecoder ? v1::LAYER_DECODER : v1::LAYER_MOE);
  w.set_lm_head(config.lm_head);
  w.set_dense_layers(config.dense_layers);
  w.set_layers(config.layers);
  w.set_scale(config.scale);
  w.set_dtype(DtypeToProto(config.dtype));
  *w.mutable_routing() = RoutingToProto(config.routing);
  w.set_seed(config.seed);
  w.set_warmup(config.warmup);
  w.set_iterations(config.iterations);
  w.set_check(config.check);
  w.mutable_timeouts()->set_collective_seconds(config.comm_timeout_s);
  w.set_expert_parallel(world_size);
  return w;
}

absl::StatusOr<WorkloadConfig> WorkloadConfigFromPoint(const v1::PointWorkload& point,
                                                       const Catalog* catalog,
                                                       int threads_per_rank) {
  WorkloadConfig config;
  if (point.has_model_spec()) {
    absl::StatusOr<ModelSpec> model = ModelSpecFromProto(point.model_spec());
    if (!model.ok()) return Refuse("model_spec", model.status().message());
    config.model = *std::move(model);
  } else if (!point.model().empty() && catalog == nullptr) {
    return Refuse("model_spec", "required here (no catalog to resolve 'model' with)");
  } else if (!point.model().empty()) {
    absl::StatusOr<const ModelSpec*> model = catalog->FindModel(point.model());
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
  config.output_len = point.output_len();
  config.lm_head = point.lm_head();
  config.dense_layers = point.dense_layers();
  switch (point.layer()) {
    case v1::LAYER_UNSPECIFIED:
    case v1::LAYER_MOE:
      config.layer = LayerKind::kMoe;
      break;
    case v1::LAYER_DECODER:
      config.layer = LayerKind::kDecoder;
      break;
    default:
      return Refuse("layer", absl::StrCat("unknown value ", point.layer()));
  }
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

void SetLaunchWorkload(const WorkloadConfig& config, int world_size, v1::RankLaunch& launch) {
  *launch.mutable_workload() =
      PointWorkloadOf(config, config.batches.empty() ? 0 : config.batches.front(), world_size);
  launch.mutable_batch_sizes()->Assign(config.batches.begin(), config.batches.end());
  launch.set_check_tolerance(config.tolerance);
  launch.set_threads_per_rank(config.threads_per_rank);
}

absl::StatusOr<WorkloadConfig> WorkloadOfLaunch(const v1::RankLaunch& launch) {
  MOECAP_ASSIGN_OR_RETURN(
      WorkloadConfig config,
      WorkloadConfigFromPoint(launch.workload(), /*catalog=*/nullptr, launch.threads_per_rank()));
  if (!launch.batch_sizes().empty()) {
    config.batches.assign(launch.batch_sizes().begin(), launch.batch_sizes().end());
  }
  config.tolerance = launch.check_tolerance();
  return config;
}

}  // namespace moecap
