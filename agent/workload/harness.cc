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

absl::Status Annotate(const absl::Status& status, absl::string_view where) {
  return absl::Status(status.code(), absl::StrCat(where, ": ", status.message()));
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
                                         MoeEngine& engine, Communicator& comm,
                                         const ReferenceModel& reference, ServingPhase phase,
                                         int64_t batch, const RankContext& context) {
  RankPointResult point;
  point.phase = phase;
  point.batch = batch;
  point.tokens = TokensPerStep(config, phase, batch);
  const Range own = RankTokens(point.tokens, comm.rank(), comm.size());
  const int64_t d = scaled.hidden_size;
  const auto progress = [&](absl::string_view what) {
    if (context.progress) {
      context.progress(absl::StrCat(ServingPhaseName(phase), " batch ", batch, ": ", what));
    }
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
                              input.data(), own.count, overrides, record, output.data(), tolerance);
    if (!check.ok()) return check.status();
    point.check = *check;
    progress(absl::StrCat("check ", check->passed ? "passed" : "FAILED", " (max abs ",
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
  }
  point.loop_seconds = Since(loop_start);
  MeasureEnergy(context, joules_before, point);
  point.counts = CountRankStep(scaled, config.dtype, config.layers, point.tally, comm.rank() == 0);
  progress("measured");
  return point;
}

nlohmann::json SamplesToJson(const PhaseSamples& s) {
  return {{"step", s.step},
          {"gate", s.gate},
          {"dispatch", s.dispatch},
          {"experts", s.experts},
          {"combine", s.combine}};
}

nlohmann::json CheckToJson(const CheckResult& c) {
  return {{"ran", c.ran},
          {"passed", c.passed},
          {"max_abs_error", c.max_abs_error},
          {"max_rel_error", c.max_rel_error},
          {"tolerance", c.tolerance},
          {"near_ties", c.near_ties},
          {"routing_mismatches", c.routing_mismatches}};
}

}  // namespace

absl::Status FailRank(Communicator& comm, const absl::Status& status, absl::string_view where) {
  comm.Abort();
  return Annotate(status, absl::StrCat("rank ", comm.rank(), " of ", comm.size(), where));
}

absl::Status RunPoints(const WorkloadConfig& config, const RankContext& context, Communicator& comm,
                       MoeEngine& engine, const ReferenceModel& reference, RankResult& result) {
  const ModelSpec scaled = ScaledModel(config.model, config.scale);
  for (ServingPhase phase : config.phases) {
    for (int64_t batch : config.batches) {
      absl::StatusOr<RankPointResult> point =
          RunPoint(config, scaled, engine, comm, reference, phase, batch, context);
      if (!point.ok()) {
        return FailRank(comm, point.status(),
                        absl::StrCat(", ", ServingPhaseName(phase), " batch ", batch));
      }
      result.points.push_back(*std::move(point));
    }
  }
  // Nobody leaves before everyone is done, so no peer sees a closed connection as a failure.
  if (absl::Status s = comm.Barrier(); !s.ok()) return FailRank(comm, s, ": final barrier");
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
  if (context.progress) {
    context.progress(absl::StrCat("weights ready (", result.setup_seconds, " s)"));
  }

  ExpertParallelMoe moe(scaled, *weights, backend, comm);
  const ReferenceModel reference{&backend, &*weights};
  MOECAP_RETURN_IF_ERROR(RunPoints(config, context, comm, moe, reference, result));
  return result;
}

nlohmann::json RankResultToJson(const RankResult& r) {
  nlohmann::json points = nlohmann::json::array();
  for (const RankPointResult& p : r.points) {
    const StepTally& t = p.tally;
    points.push_back({
        {"phase", ServingPhaseName(p.phase)},
        {"batch", p.batch},
        {"tokens", p.tokens},
        {"tally",
         {{"own_tokens", t.own_tokens},
          {"pairs_computed", t.pairs_computed},
          {"local_activated_sum", t.local_activated_sum},
          {"dispatch_rows_sent", t.dispatch_rows_sent},
          {"dispatch_rows_to_self", t.dispatch_rows_to_self},
          {"combine_rows_sent", t.combine_rows_sent},
          {"combine_rows_to_self", t.combine_rows_to_self},
          {"count_exchange_bytes", t.count_exchange_bytes},
          {"histogram", t.histogram}}},
        {"global_histogram", p.global_histogram},
        {"counted", CountsToJson(p.counts.counted)},
        {"physical", CountsToJson(p.counts.physical)},
        {"activation_bytes", p.counts.activation_bytes},
        {"comm_bytes", CommBytesToJson(p.counts.comm)},
        {"samples", SamplesToJson(p.samples)},
        {"loop_seconds", p.loop_seconds},
        {"energy_joules",
         p.energy_joules.has_value() ? nlohmann::json(*p.energy_joules) : nlohmann::json()},
        {"energy_source", p.energy_source},
        {"energy_unavailable", p.energy_unavailable},
        {"check", CheckToJson(p.check)},
    });
  }
  return {{"rank", r.rank},
          {"world_size", r.world_size},
          {"host", r.host},
          {"threads", r.threads},
          {"backend", r.backend},
          {"library", r.library},
          {"communicator", r.communicator},
          {"setup_seconds", r.setup_seconds},
          {"points", points}};
}

absl::StatusOr<RankResult> RankResultFromJson(const nlohmann::json& j) {
  try {
    RankResult r;
    r.rank = j.at("rank").get<int>();
    r.world_size = j.at("world_size").get<int>();
    r.host = j.value("host", "");
    r.threads = j.value("threads", 1);
    r.backend = j.value("backend", "");
    r.library = j.value("library", "");
    r.communicator = j.value("communicator", "");
    r.setup_seconds = j.value("setup_seconds", 0.0);
    for (const nlohmann::json& pj : j.at("points")) {
      RankPointResult p;
      absl::StatusOr<ServingPhase> phase = ParseServingPhase(pj.at("phase").get<std::string>());
      if (!phase.ok()) return phase.status();
      p.phase = *phase;
      p.batch = pj.at("batch").get<int64_t>();
      p.tokens = pj.at("tokens").get<int64_t>();
      const nlohmann::json& t = pj.at("tally");
      p.tally.own_tokens = t.at("own_tokens").get<int64_t>();
      p.tally.pairs_computed = t.at("pairs_computed").get<int64_t>();
      p.tally.local_activated_sum = t.at("local_activated_sum").get<int64_t>();
      p.tally.dispatch_rows_sent = t.at("dispatch_rows_sent").get<int64_t>();
      p.tally.dispatch_rows_to_self = t.at("dispatch_rows_to_self").get<int64_t>();
      p.tally.combine_rows_sent = t.at("combine_rows_sent").get<int64_t>();
      p.tally.combine_rows_to_self = t.at("combine_rows_to_self").get<int64_t>();
      p.tally.count_exchange_bytes = t.at("count_exchange_bytes").get<int64_t>();
      p.tally.histogram = t.at("histogram").get<std::vector<std::vector<int64_t>>>();
      p.global_histogram = pj.at("global_histogram").get<std::vector<std::vector<int64_t>>>();
      p.counts.counted = CountsFromJson(pj.at("counted"));
      p.counts.physical = CountsFromJson(pj.at("physical"));
      p.counts.activation_bytes = pj.value("activation_bytes", 0.0);
      p.counts.comm = CommBytesFromJson(pj.at("comm_bytes"));
      const nlohmann::json& s = pj.at("samples");
      p.samples.step = s.at("step").get<std::vector<double>>();
      p.samples.gate = s.at("gate").get<std::vector<double>>();
      p.samples.dispatch = s.at("dispatch").get<std::vector<double>>();
      p.samples.experts = s.at("experts").get<std::vector<double>>();
      p.samples.combine = s.at("combine").get<std::vector<double>>();
      p.loop_seconds = pj.value("loop_seconds", 0.0);
      if (pj.contains("energy_joules") && pj["energy_joules"].is_number()) {
        p.energy_joules = pj["energy_joules"].get<double>();
      }
      p.energy_source = pj.value("energy_source", "");
      p.energy_unavailable = pj.value("energy_unavailable", "");
      const nlohmann::json& c = pj.at("check");
      p.check.ran = c.at("ran").get<bool>();
      p.check.passed = c.at("passed").get<bool>();
      // JSON has no infinity (a NaN output gives one): null reads back as infinity.
      const auto number_or_inf = [&](const char* key) {
        return c.at(key).is_number() ? c.at(key).get<double>()
                                     : std::numeric_limits<double>::infinity();
      };
      p.check.max_abs_error = number_or_inf("max_abs_error");
      p.check.max_rel_error = number_or_inf("max_rel_error");
      p.check.tolerance = c.at("tolerance").get<double>();
      p.check.near_ties = c.at("near_ties").get<int64_t>();
      p.check.routing_mismatches = c.at("routing_mismatches").get<int64_t>();
      r.points.push_back(std::move(p));
    }
    return r;
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("rank result JSON: ", e.what()));
  }
}

}  // namespace moecap
