// RunRank and the rank result's JSON form (how rank processes hand results to their launcher).
#include "agent/workload/harness.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "absl/strings/str_cat.h"
#include "agent/compute/host_probe.h"
#include "agent/workload/memory.h"
#include "agent/workload/moe_layer.h"
#include "agent/workload/router.h"
#include "agent/workload/weights.h"
#include "common/status_macros.h"

namespace moecap {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The loop's energy from the readings before and after it, or why there is none.
void MeasureEnergy(const RankContext& context,
                   const std::optional<absl::StatusOr<double>>& joules_before,
                   RankPointResult& point) {
  if (context.energy == nullptr) {
    point.energy_unavailable = context.energy_unavailable.empty()
                                   ? "no energy counter was opened for this rank"
                                   : context.energy_unavailable;
    return;
  }
  const absl::StatusOr<double> after = context.energy->Joules();
  if (!joules_before->ok() || !after.ok()) {
    point.energy_unavailable =
        std::string((!joules_before->ok() ? joules_before->status() : after.status()).message());
    return;
  }
  const int shared_by = std::max(1, context.energy_shared_by);
  point.energy_joules = (*after - **joules_before) / static_cast<double>(shared_by);
  point.energy_source = shared_by > 1 ? absl::StrCat(context.energy->source(), " (1/", shared_by,
                                                     ": the counter is shared by the host's ranks)")
                                      : context.energy->source();
}

// One point (phase × batch) on this rank.
absl::StatusOr<RankPointResult> RunPoint(const WorkloadConfig& config, const ModelSpec& scaled,
                                         MoeEngine& engine, DecoderAttention* attention,
                                         Communicator& comm, const ReferenceModel& reference,
                                         ServingPhase phase, int64_t batch,
                                         const RankContext& context) {
  RankPointResult point;
  point.phase = phase;
  point.batch = batch;
  point.tokens = TokensPerStep(config, phase, batch);
  const Range own = RankRows(config, phase, batch, comm.rank(), comm.size());
  if (attention != nullptr) {
    point.attention =
        AttentionShare{RankSequences(config, phase, batch, comm.rank(), comm.size()),
                       phase == ServingPhase::kPrefill ? PassKind::kPrefill : PassKind::kDecode,
                       config.lm_head, config.dense_layers};
    MOECAP_RETURN_IF_ERROR(attention->Prepare(point.attention->sequences));
  }
  const int64_t d = scaled.hidden_size;
  const auto log = [&](absl::string_view what) {
    if (context.log)
      context.log(absl::StrCat(ServingPhaseName(phase), " batch ", batch, ": ", what));
  };

  std::vector<float> input(static_cast<size_t>(own.count * d));
  FillInputRows(config.seed, point.tokens, own.begin, own.count, d, input.data());
  std::vector<std::vector<int32_t>> overrides;
  if (config.routing.mode != RoutingMode::kGate) {
    for (int64_t l = 0; l < config.layers; ++l) {
      overrides.push_back(
          OverrideChoices(OverrideShares(config.routing, scaled.experts, config.seed, l),
                          scaled.experts_per_token, config.seed, l, point.tokens, own));
    }
  }
  MOECAP_RETURN_IF_ERROR(engine.Prepare(own.count, point.tokens, overrides, input.data()));

  // The first step is untimed: it yields the routing (fixed for the point) and feeds the check.
  MOECAP_RETURN_IF_ERROR(comm.Barrier());
  RoutingRecord record;
  MOECAP_RETURN_IF_ERROR(engine.Step(nullptr, &point.tally, config.check ? &record : nullptr));
  if (config.check) {
    if (reference.backend == nullptr || reference.weights == nullptr) {
      return absl::InvalidArgumentError("the check needs a reference backend and weights");
    }
    std::vector<float> output(input.size());
    MOECAP_RETURN_IF_ERROR(engine.ReadOutput(output.data()));
    const double tolerance =
        config.tolerance > 0 ? config.tolerance : DefaultTolerance(config.dtype);
    absl::StatusOr<CheckResult> check =
        CheckAgainstReference(*reference.backend, scaled, *reference.weights, config.seed,
                              input.data(), own.count, overrides, record, output.data(), tolerance,
                              point.attention ? &point.attention->sequences : nullptr,
                              reference.dense, reference.dense_at);
    if (!check.ok()) return check.status();
    point.check = *check;
    log(absl::StrCat("check ", check->passed ? "passed" : "FAILED", " (max abs ",
                     check->max_abs_error, ", max rel ", check->max_rel_error, ")"));
  }
  std::vector<int64_t> flat;
  for (const std::vector<int64_t>& layer : point.tally.histogram) {
    flat.insert(flat.end(), layer.begin(), layer.end());
  }
  MOECAP_RETURN_IF_ERROR(comm.AllReduceSum(flat.data(), flat.size()));
  const size_t experts = static_cast<size_t>(scaled.experts);
  for (size_t l = 0; l < point.tally.histogram.size(); ++l) {
    point.global_histogram.emplace_back(flat.begin() + l * experts,
                                        flat.begin() + (l + 1) * experts);
  }

  for (int i = 0; i < config.warmup; ++i) {
    MOECAP_RETURN_IF_ERROR(comm.Barrier());
    MOECAP_RETURN_IF_ERROR(engine.Step(nullptr, nullptr, nullptr));
  }
  PhaseSamples& samples = point.samples;
  // The counter is read just outside the loop: the window is the loop's, barriers included.
  std::optional<absl::StatusOr<double>> joules_before;
  if (context.energy != nullptr) joules_before = context.energy->Joules();
  const Clock::time_point loop_start = Clock::now();
  for (int i = 0; i < config.iterations; ++i) {
    MOECAP_RETURN_IF_ERROR(comm.Barrier());
    PhaseTimes times;
    const Clock::time_point start = Clock::now();
    MOECAP_RETURN_IF_ERROR(engine.Step(&times, nullptr, nullptr));
    samples.step.push_back(Since(start));
    samples.gate.push_back(times.gate);
    samples.dispatch.push_back(times.dispatch);
    samples.experts.push_back(times.experts);
    samples.combine.push_back(times.combine);
    if (attention != nullptr) samples.attention.push_back(times.attention);
    if (config.lm_head) samples.lm_head.push_back(times.lm_head);
    if (config.dense_layers > 0) samples.dense_ffn.push_back(times.dense_ffn);
  }
  point.loop_seconds = Since(loop_start);
  MeasureEnergy(context, joules_before, point);
  point.counts = CountRankStep(scaled, config.dtype, config.layers, point.tally, comm.rank() == 0,
                               point.attention ? &*point.attention : nullptr);
  log("measured");
  return point;
}

}  // namespace

absl::Status FailRank(Communicator& comm, const absl::Status& status, absl::string_view where) {
  comm.Abort();
  return Annotate(status, absl::StrCat("rank ", comm.rank(), " of ", comm.size(), where));
}

absl::Status RunPoints(const WorkloadConfig& config, const RankContext& context, Communicator& comm,
                       MoeEngine& engine, DecoderAttention* attention,
                       const ReferenceModel& reference, RankResult& result) {
  const ModelSpec scaled = ScaledModel(config.model, config.scale);
  v1::Progress progress;
  progress.set_ranks_reporting(1);
  progress.set_iterations_total(static_cast<int64_t>(config.iterations) *
                                static_cast<int64_t>(config.phases.size() * config.batches.size()));
  const auto report = [&](v1::Progress::Stage stage) {
    progress.set_stage(stage);
    if (context.progress) context.progress(progress);
  };
  for (ServingPhase phase : config.phases) {
    progress.set_phase(phase == ServingPhase::kPrefill ? v1::PHASE_PREFILL : v1::PHASE_DECODE);
    for (int64_t batch : config.batches) {
      report(config.check ? v1::Progress::STAGE_CHECK : v1::Progress::STAGE_MEASURE);
      absl::StatusOr<RankPointResult> point =
          RunPoint(config, scaled, engine, attention, comm, reference, phase, batch, context);
      if (!point.ok()) {
        return FailRank(comm, point.status(),
                        absl::StrCat(", ", ServingPhaseName(phase), " batch ", batch));
      }
      result.points.push_back(*std::move(point));
      progress.set_iterations_done(progress.iterations_done() + config.iterations);
    }
  }
  // Nobody leaves before everyone is done, so no peer sees a closed connection as a failure.
  if (absl::Status s = comm.Barrier(); !s.ok()) return FailRank(comm, s, ": final barrier");
  report(v1::Progress::STAGE_REPORT);
  return absl::OkStatus();
}

RankResult StartRankResult(const Communicator& comm, const ComputeBackend& backend,
                           const std::string& host) {
  RankResult result;
  result.rank = comm.rank();
  result.world_size = comm.size();
  result.host = host;
  result.threads = backend.threads();
  result.backend = backend.name();
  result.library = backend.LibraryConfig();
  result.communicator = comm.name();
  return result;
}

absl::StatusOr<RankResult> RunRank(const WorkloadConfig& config, const RankContext& context,
                                   Communicator& comm, ComputeBackend& backend) {
  const auto fail = [&](const absl::Status& status, absl::string_view where) {
    return FailRank(comm, status, where);
  };
  if (absl::Status s = ValidateWorkload(config, comm.size()); !s.ok()) return fail(s, "");
  if (absl::Status s = backend.CheckDtype(config.dtype); !s.ok()) return fail(s, "");
  const ModelSpec scaled = ScaledModel(config.model, config.scale);
  const HostInfo host = GetHostInfo();

  const MemoryEstimate estimate = EstimateMemory(config, comm.size(), 1);
  if (absl::StatusOr<int64_t> available = MemAvailableBytes(); available.ok()) {
    if (absl::Status s = CheckMemoryFits(config, estimate, *available); !s.ok()) {
      return fail(s, "");
    }
  }
  const int threads = config.threads_per_rank > 0
                          ? config.threads_per_rank
                          : std::max(1, host.cores / std::max(1, context.ranks_on_host));
  backend.SetThreads(threads);

  RankResult result = StartRankResult(comm, backend, host.hostname);

  const Clock::time_point setup = Clock::now();
  absl::StatusOr<MoeWeights> weights =
      MoeWeights::Generate(backend, scaled, config.layers, config.dtype, config.seed,
                           RankExperts(scaled.experts, comm.rank(), comm.size()));
  if (!weights.ok()) return fail(weights.status(), ": generating weights");
  result.setup_seconds = Since(setup);
  if (context.log) context.log(absl::StrCat("weights ready (", result.setup_seconds, " s)"));

  ExpertParallelMoe moe(scaled, *weights, backend, comm);
  // Decoder layers: the attention weights on every rank, the caches per point.
  // With dense layers, at the stack layers the model has them (StackDenseLayers).
  std::optional<AttentionWeights> attention_weights;
  std::optional<AttentionStack> attention;
  std::optional<DenseFfnLayers> dense;
  std::vector<bool> dense_at;
  if (config.layer == LayerKind::kDecoder) {
    const int64_t stack = config.layers + config.dense_layers;
    absl::StatusOr<AttentionWeights> generated = AttentionWeights::Generate(
        backend, scaled, stack, config.dtype, config.seed, config.lm_head);
    if (!generated.ok()) return fail(generated.status(), ": generating attention weights");
    attention_weights = *std::move(generated);
    attention.emplace(scaled, *attention_weights, stack, config.seed, backend);
    if (config.dense_layers > 0) {
      absl::StatusOr<DenseFfnLayers> dense_layers =
          DenseFfnLayers::Generate(backend, scaled, config.dense_layers, config.dtype, config.seed);
      if (!dense_layers.ok()) return fail(dense_layers.status(), ": generating dense layers");
      dense = *std::move(dense_layers);
      dense_at = StackDenseLayers(scaled, config.layers, config.dense_layers);
    }
    moe.SetAttention(&*attention, dense ? &*dense : nullptr, dense_at);
  }
  const ReferenceModel reference{&backend, &*weights, dense ? &*dense : nullptr,
                                 dense ? &dense_at : nullptr};
  MOECAP_RETURN_IF_ERROR(
      RunPoints(config, context, comm, moe, attention ? &*attention : nullptr, reference, result));
  return result;
}

}  // namespace moecap
