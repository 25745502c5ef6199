// Cluster aggregation of one point (see aggregator.h for the conventions).
#include "common/aggregate/aggregator.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/cost.h"
#include "common/metrics.h"
#include "common/model.h"
#include "common/parallel_metrics.h"
#include "common/plan/convert.h"
#include "common/precision.h"
#include "common/stats.h"
#include "google/protobuf/util/time_util.h"

namespace moecap {
namespace {

using google::protobuf::util::TimeUtil;

// One rank's report of one phase, with where it came from.
struct RankPhaseRef {
  int rank = 0;
  const v1::RankPhase* phase = nullptr;
};

double PeakFlopsFor(const v1::Device& device, v1::Dtype dtype) {
  for (const v1::DtypeFlops& f : device.peak_flops()) {
    if (f.dtype() == dtype) return f.flops_per_s();
  }
  return 0;
}

struct Peaks {
  double bandwidth = 0;  // bytes/s, summed over the devices
  double flops = 0;      // FLOP/s for the dtype, summed over the devices
};

Peaks SumPeaks(const std::vector<const v1::Device*>& devices, v1::Dtype dtype) {
  Peaks p;
  for (const v1::Device* d : devices) {
    p.bandwidth += d->peak_bandwidth_bytes_per_s();
    p.flops += PeakFlopsFor(*d, dtype);
  }
  return p;
}

// The distinct devices of some node reports (an agent's device index counts once).
std::vector<const v1::Device*> DistinctDevices(const v1::NodeReport& node) {
  std::vector<const v1::Device*> out;
  std::set<int> seen;
  for (const v1::Device& d : node.devices()) {
    if (seen.insert(d.index()).second) out.push_back(&d);
  }
  return out;
}

// The slowest rank's time per step: the element-wise maximum of the ranks' series when all have
// one of the same length, else the summary of the rank with the largest mean.
v1::Percentiles SlowestStepTime(const std::vector<RankPhaseRef>& ranks) {
  bool series = !ranks.empty();
  const int n = ranks.empty() ? 0 : ranks.front().phase->step_seconds_size();
  for (const RankPhaseRef& r : ranks) {
    if (r.phase->step_seconds_size() == 0 || r.phase->step_seconds_size() != n) series = false;
  }
  if (series) {
    std::vector<double> slowest(static_cast<size_t>(n), 0.0);
    for (const RankPhaseRef& r : ranks) {
      for (int i = 0; i < n; ++i) slowest[i] = std::max(slowest[i], r.phase->step_seconds(i));
    }
    return PercentilesOf(slowest);
  }
  const RankPhaseRef* worst = nullptr;
  for (const RankPhaseRef& r : ranks) {
    if (worst == nullptr || r.phase->step_time().mean() > worst->phase->step_time().mean()) {
      worst = &r;
    }
  }
  return worst == nullptr ? v1::Percentiles() : worst->phase->step_time();
}

const RankPhaseRef* SlowestRank(const std::vector<RankPhaseRef>& ranks) {
  const RankPhaseRef* worst = nullptr;
  for (const RankPhaseRef& r : ranks) {
    if (worst == nullptr || r.phase->step_time().mean() > worst->phase->step_time().mean()) {
      worst = &r;
    }
  }
  return worst;
}

// The mean of a sub-phase on each rank.
std::vector<double> SubMeans(const std::vector<RankPhaseRef>& ranks,
                             const v1::Percentiles& (v1::PhaseTimes::*part)() const) {
  std::vector<double> out;
  for (const RankPhaseRef& r : ranks) out.push_back((r.phase->sub_times().*part)().mean());
  return out;
}

double MaxOf(const std::vector<double>& values) {
  return values.empty() ? 0 : *std::max_element(values.begin(), values.end());
}
double MinOf(const std::vector<double>& values) {
  return values.empty() ? 0 : *std::min_element(values.begin(), values.end());
}

// One all-to-all over the ranks (common/parallel_metrics.h): the busiest rank's bytes over the
// slowest rank's mean time, and over the fastest rank's (the transfer itself).
v1::CollectiveBandwidth CollectiveOf(const std::vector<RankPhaseRef>& ranks, bool dispatch) {
  std::vector<double> logical, remote;
  for (const RankPhaseRef& r : ranks) {
    const v1::Communication& c = r.phase->communication();
    logical.push_back(dispatch ? c.dispatch_logical_bytes() : c.combine_logical_bytes());
    remote.push_back(dispatch ? c.dispatch_remote_bytes() : c.combine_remote_bytes());
  }
  const std::vector<double> means =
      SubMeans(ranks, dispatch ? &v1::PhaseTimes::dispatch : &v1::PhaseTimes::combine);
  const AllToAllFigures slowest = AllToAllBandwidth(logical, remote, MaxOf(means));
  const AllToAllFigures fastest = AllToAllBandwidth(logical, remote, MinOf(means));
  v1::CollectiveBandwidth out;
  out.set_logical_bytes(slowest.logical_bytes);
  out.set_remote_bytes(slowest.remote_bytes);
  out.set_seconds(slowest.seconds);
  out.set_algbw_bytes_per_s(slowest.algbw);
  out.set_busbw_bytes_per_s(slowest.busbw);
  out.set_remote_bw_bytes_per_s(slowest.remote_bw);
  out.set_transfer_seconds(fastest.seconds);
  out.set_transfer_algbw_bytes_per_s(fastest.algbw);
  out.set_transfer_remote_bw_bytes_per_s(fastest.remote_bw);
  return out;
}

// Both all-to-alls of a step: bytes summed over the ranks; the bandwidths of the busiest rank's
// dispatch + combine bytes over the slowest rank's dispatch + combine time.
v1::Communication CommunicationOf(const std::vector<RankPhaseRef>& ranks) {
  v1::Communication sum;
  std::vector<double> logical, remote, seconds;
  for (const RankPhaseRef& r : ranks) {
    const v1::Communication& c = r.phase->communication();
    sum.set_dispatch_logical_bytes(sum.dispatch_logical_bytes() + c.dispatch_logical_bytes());
    sum.set_dispatch_remote_bytes(sum.dispatch_remote_bytes() + c.dispatch_remote_bytes());
    sum.set_combine_logical_bytes(sum.combine_logical_bytes() + c.combine_logical_bytes());
    sum.set_combine_remote_bytes(sum.combine_remote_bytes() + c.combine_remote_bytes());
    logical.push_back(c.dispatch_logical_bytes() + c.combine_logical_bytes());
    remote.push_back(c.dispatch_remote_bytes() + c.combine_remote_bytes());
    seconds.push_back(r.phase->sub_times().dispatch().mean() +
                      r.phase->sub_times().combine().mean());
  }
  const AllToAllFigures bw = AllToAllBandwidth(logical, remote, MaxOf(seconds));
  sum.set_algbw_bytes_per_s(bw.algbw);
  sum.set_busbw_bytes_per_s(bw.busbw);
  sum.set_remote_bw_bytes_per_s(bw.remote_bw);
  return sum;
}

// The ranks' expert histograms merged: tokens[l][e] over the experts any rank holds (each expert
// once: a replicated expert's tokens are added up), e in the order of their global ids.
std::vector<std::vector<int64_t>> MergedHistogram(const std::vector<RankPhaseRef>& ranks) {
  std::map<int32_t, size_t> column;
  for (const RankPhaseRef& r : ranks) {
    for (int32_t e : r.phase->expert_tokens().experts()) column.emplace(e, 0);
  }
  size_t next = 0;
  for (auto& [expert, index] : column) index = next++;
  std::vector<std::vector<int64_t>> out;
  for (const RankPhaseRef& r : ranks) {
    const v1::ExpertHistogram& h = r.phase->expert_tokens();
    if (out.size() < static_cast<size_t>(h.layers_size())) {
      out.resize(static_cast<size_t>(h.layers_size()), std::vector<int64_t>(column.size(), 0));
    }
    for (int l = 0; l < h.layers_size(); ++l) {
      for (int i = 0; i < h.layers(l).tokens_size() && i < h.experts_size(); ++i) {
        out[l][column[h.experts(i)]] += h.layers(l).tokens(i);
      }
    }
  }
  return out;
}

// The imbalance of the experts `node` holds against the whole layer's mean (`everyone`: every
// rank's histograms merged, made once per phase), largest layer's.
double NodeImbalance(const std::vector<std::vector<int64_t>>& everyone,
                     const std::vector<RankPhaseRef>& node) {
  const std::vector<std::vector<int64_t>> mine = MergedHistogram(node);
  double worst = 0;
  for (size_t l = 0; l < everyone.size() && l < mine.size(); ++l) {
    const int64_t total = std::accumulate(everyone[l].begin(), everyone[l].end(), int64_t{0});
    const int64_t busiest = mine[l].empty() ? 0 : *std::max_element(mine[l].begin(), mine[l].end());
    worst =
        std::max(worst, ExpertImbalance(static_cast<double>(busiest), static_cast<double>(total),
                                        static_cast<int64_t>(everyone[l].size())));
  }
  return worst;
}

Counts SumCounts(const std::vector<RankPhaseRef>& ranks, bool dense) {
  Counts sum;
  for (const RankPhaseRef& r : ranks) {
    sum += TermCountsFromProto(dense ? r.phase->dense_counts() : r.phase->counts());
  }
  return sum;
}

bool SameCounts(const Counts& a, const Counts& b) {
  for (Term t : kAllTerms) {
    if (a[t].bytes != b[t].bytes || a[t].flops != b[t].flops) return false;
  }
  return true;
}

// The worst of some checks: a failed one (largest error first), else the largest error.
v1::CheckResult WorstOf(const std::vector<const v1::CheckResult*>& checks) {
  const v1::CheckResult* worst = nullptr;
  for (const v1::CheckResult* c : checks) {
    if (!c->checked()) continue;
    if (worst == nullptr) {
      worst = c;
      continue;
    }
    const bool c_failed = !c->passed();
    const bool w_failed = !worst->passed();
    if ((c_failed && !w_failed) ||
        (c_failed == w_failed && c->max_abs_error() > worst->max_abs_error())) {
      worst = c;
    }
  }
  return worst == nullptr ? v1::CheckResult() : *worst;
}

// The counted terms against the metric core's count for the model as run, when the workload
// carries its model: the MoE blocks, and in decoder layers the batch's attention over its caches
// (a decode step at DecodeStepContext, a prefill of fresh prompts).
v1::MetricCoreCheck MetricCoreCheckOf(const v1::PointWorkload& w, v1::Phase phase, double tokens,
                                      double activated_sum, const Counts& counted) {
  v1::MetricCoreCheck out;
  const std::optional<Dtype> dtype = DtypeFromProto(w.dtype());
  if (!w.has_model_spec() || !dtype.has_value()) return out;
  absl::StatusOr<ModelSpec> model = ModelSpecFromProto(w.model_spec());
  if (!model.ok()) return out;
  const ModelSpec scaled = ScaledModel(*model, w.scale());
  const Precision precision = MakePrecision(*dtype);
  Counts core =
      CountMoeBlocks(scaled, precision, static_cast<double>(w.layers()), tokens, activated_sum);
  if (w.layer() == v1::LAYER_DECODER) {
    const bool prefill = phase == v1::PHASE_PREFILL;
    core += CountDecoderStep(
        StackModel(scaled, w.layers(), w.dense_layers()), precision,
        prefill ? PassKind::kPrefill : PassKind::kDecode, static_cast<double>(w.batch_size()),
        prefill ? static_cast<double>(w.prompt_len()) : 1.0,
        prefill ? 0.0 : static_cast<double>(DecodeStepContext(w.prompt_len(), w.output_len()) - 1),
        w.lm_head());
  }
  out.set_checked(true);
  out.set_matches(SameCounts(counted, core));
  *out.mutable_counts() = TermCountsToProto(core);
  return out;
}

v1::RankPhaseSummary RankRowOf(const RankPhaseRef& r, const std::string& agent_id) {
  const v1::RankPhase& p = *r.phase;
  v1::RankPhaseSummary row;
  row.set_rank(r.rank);
  row.set_agent_id(agent_id);
  row.set_tokens_per_step(p.tokens_per_step());
  row.set_pairs_computed_per_step(p.pairs_computed_per_step());
  *row.mutable_counts() = p.counts();
  *row.mutable_physical_counts() = p.physical_counts();
  row.set_activation_bytes(p.activation_bytes());
  *row.mutable_communication() = p.communication();
  row.set_step_mean_seconds(p.step_time().mean());
  row.set_gate_mean_seconds(p.sub_times().gate().mean());
  row.set_dispatch_mean_seconds(p.sub_times().dispatch().mean());
  row.set_experts_mean_seconds(p.sub_times().experts().mean());
  row.set_combine_mean_seconds(p.sub_times().combine().mean());
  *row.mutable_check() = p.check();
  return row;
}

// The utilisation of `amount` over `seconds` against a summed peak; 0 when either is unknown.
double UtilizationOrZero(double amount, double seconds, double summed_peak) {
  if (seconds <= 0 || summed_peak <= 0) return 0;
  return Utilization(amount, seconds, /*devices=*/1, summed_peak);
}

// The ranks' measured energy, when every one of them read a counter: their sum per step, the mean
// power over the longest window, and per token. Otherwise the first rank's reason.
void AddEnergy(const std::vector<RankPhaseRef>& ranks, v1::PhaseResult& out) {
  double joules = 0, window = 0;
  std::vector<std::string> sources;
  for (const RankPhaseRef& r : ranks) {
    if (!r.phase->has_energy_joules_per_step()) {
      out.set_energy_unavailable(absl::StrCat("rank ", r.rank, ": ",
                                              r.phase->energy_unavailable().empty()
                                                  ? "no energy reported"
                                                  : r.phase->energy_unavailable()));
      return;
    }
    joules += r.phase->energy_joules_per_step();
    window = std::max(window, r.phase->energy_window_seconds_per_step());
    if (std::find(sources.begin(), sources.end(), r.phase->energy_source()) == sources.end()) {
      sources.push_back(r.phase->energy_source());
    }
  }
  if (ranks.empty()) return;
  out.set_energy_joules_per_step(joules);
  out.set_energy_source(absl::StrJoin(sources, "; "));
  if (window > 0) out.set_mean_power_watts(joules / window);
  const double tokens_per_step = out.tokens_per_s() * out.step_time().mean();
  if (tokens_per_step > 0) out.set_joules_per_token(joules / tokens_per_step);
}

v1::PhaseResult AggregatePhase(const v1::PointWorkload& w, v1::Phase phase,
                               const std::vector<RankPhaseRef>& ranks,
                               const std::vector<std::string>& agent_of_rank, const Peaks& peaks) {
  v1::PhaseResult out;
  out.set_phase(phase);
  const Counts sparse = SumCounts(ranks, /*dense=*/false);
  const Counts dense = SumCounts(ranks, /*dense=*/true);
  *out.mutable_step_time() = SlowestStepTime(ranks);
  const double t = out.step_time().mean();
  out.set_bytes(sparse.bytes());
  out.set_flops(sparse.flops());
  out.set_dense_bytes(dense.bytes());
  out.set_dense_flops(dense.flops());
  out.set_s_mbu(UtilizationOrZero(sparse.bytes(), t, peaks.bandwidth));
  out.set_s_mfu(UtilizationOrZero(sparse.flops(), t, peaks.flops));
  out.set_dense_mbu(UtilizationOrZero(dense.bytes(), t, peaks.bandwidth));
  out.set_dense_mfu(UtilizationOrZero(dense.flops(), t, peaks.flops));
  out.set_peak_bandwidth_bytes_per_s(peaks.bandwidth);
  out.set_peak_flops_per_s(peaks.flops);
  const double tokens = phase == v1::PHASE_PREFILL
                            ? static_cast<double>(w.batch_size() * w.prompt_len())
                            : static_cast<double>(w.batch_size());
  out.set_tokens_per_step(static_cast<int64_t>(tokens));
  if (t > 0) {
    out.set_tokens_per_s(tokens / t);
    out.set_achieved_bandwidth_bytes_per_s(sparse.bytes() / t);
    out.set_achieved_flops_per_s(sparse.flops() / t);
  }
  if (peaks.bandwidth > 0 && peaks.flops > 0) {
    out.set_roofline_seconds(RooflineSeconds(sparse.bytes(), sparse.flops(), /*devices=*/1,
                                             peaks.bandwidth, peaks.flops));
  }
  const RoutingImbalance imbalance = ImbalanceOf(MergedHistogram(ranks));
  out.set_imbalance(imbalance.max);
  out.mutable_imbalance_per_layer()->Assign(imbalance.per_layer.begin(), imbalance.per_layer.end());
  std::vector<double> activated;
  for (const RankPhaseRef& r : ranks) {
    const auto& a = r.phase->activated_experts();
    if (activated.size() < static_cast<size_t>(a.size())) activated.resize(a.size(), 0.0);
    for (int l = 0; l < a.size(); ++l) activated[l] += a[l];
  }
  out.mutable_activated_experts()->Assign(activated.begin(), activated.end());
  *out.mutable_breakdown() = TermCountsToProto(sparse);
  if (const RankPhaseRef* slowest = SlowestRank(ranks); slowest != nullptr) {
    *out.mutable_sub_times() = slowest->phase->sub_times();
  }
  // Attention, the LM head and dense FFNs are data-parallel: each rank runs its own sequences, so
  // the step waits for the rank with the most of it, which need not be the slowest rank overall
  // (with fewer sequences than ranks the slowest may have none, and attend in no time at all).
  struct DataParallelPart {
    bool (v1::PhaseTimes::*has)() const;
    const v1::Percentiles& (v1::PhaseTimes::*get)() const;
    v1::Percentiles* (v1::PhaseTimes::*set)();
  };
  for (const DataParallelPart& part :
       {DataParallelPart{&v1::PhaseTimes::has_attention, &v1::PhaseTimes::attention,
                         &v1::PhaseTimes::mutable_attention},
        DataParallelPart{&v1::PhaseTimes::has_lm_head, &v1::PhaseTimes::lm_head,
                         &v1::PhaseTimes::mutable_lm_head},
        DataParallelPart{&v1::PhaseTimes::has_dense_ffn, &v1::PhaseTimes::dense_ffn,
                         &v1::PhaseTimes::mutable_dense_ffn}}) {
    const v1::PhaseTimes* busiest = nullptr;
    for (const RankPhaseRef& r : ranks) {
      const v1::PhaseTimes& times = r.phase->sub_times();
      if ((times.*part.has)() &&
          (busiest == nullptr || (times.*part.get)().mean() > (busiest->*part.get)().mean())) {
        busiest = &times;
      }
    }
    if (busiest != nullptr) *(out.mutable_sub_times()->*part.set)() = (busiest->*part.get)();
  }
  *out.mutable_communication() = CommunicationOf(ranks);
  *out.mutable_dispatch_bandwidth() = CollectiveOf(ranks, /*dispatch=*/true);
  *out.mutable_combine_bandwidth() = CollectiveOf(ranks, /*dispatch=*/false);
  double activated_sum = 0;
  for (double a : activated) activated_sum += a;
  *out.mutable_metric_core() = MetricCoreCheckOf(w, phase, tokens, activated_sum, sparse);
  std::vector<const v1::CheckResult*> checks;
  // The harness's overhead on the rank where it is smallest (the slowest rank hardly waits).
  std::optional<double> overhead;
  for (const RankPhaseRef& r : ranks) {
    checks.push_back(&r.phase->check());
    const double steps =
        r.phase->step_time().mean() * static_cast<double>(r.phase->step_time().count());
    if (r.phase->loop_seconds() > 0) {
      const double share = 1 - steps / r.phase->loop_seconds();
      overhead = overhead.has_value() ? std::min(*overhead, share) : share;
    }
    *out.add_ranks() = RankRowOf(r, agent_of_rank[static_cast<size_t>(r.rank)]);
  }
  out.set_harness_overhead(overhead.value_or(0));
  *out.mutable_check() = WorstOf(checks);
  int64_t iterations = 0;
  double fastest = 0;
  double slowest_mean = 0;
  for (const RankPhaseRef& r : ranks) {
    iterations = std::max(iterations, r.phase->iterations());
    const double mean = r.phase->step_time().mean();
    fastest = fastest == 0 ? mean : std::min(fastest, mean);
    slowest_mean = std::max(slowest_mean, mean);
  }
  out.set_iterations(iterations);
  if (fastest > 0) out.set_rank_step_time_ratio(slowest_mean / fastest);
  AddEnergy(ranks, out);
  return out;
}

// `everyone` is every rank's expert histogram of the phase merged; `ranks` the node's reports.
v1::NodePhaseResult AggregateNodePhase(v1::Phase phase,
                                       const std::vector<std::vector<int64_t>>& everyone,
                                       const std::vector<RankPhaseRef>& ranks, const Peaks& peaks) {
  v1::NodePhaseResult out;
  out.set_phase(phase);
  const Counts sparse = SumCounts(ranks, /*dense=*/false);
  out.set_bytes(sparse.bytes());
  out.set_flops(sparse.flops());
  *out.mutable_step_time() = SlowestStepTime(ranks);
  out.set_s_mbu(UtilizationOrZero(sparse.bytes(), out.step_time().mean(), peaks.bandwidth));
  out.set_s_mfu(UtilizationOrZero(sparse.flops(), out.step_time().mean(), peaks.flops));
  out.set_imbalance(NodeImbalance(everyone, ranks));
  *out.mutable_communication() = CommunicationOf(ranks);
  return out;
}

std::string HardwareOf(const std::vector<const v1::Device*>& devices) {
  std::set<std::string> ids;
  for (const v1::Device* d : devices) ids.insert(d->hardware());
  if (ids.size() == 1) return *ids.begin();
  return ids.empty() ? "" : "mixed";
}

// METRICS.md "Cost", when both phases ran and a price is known; nullopt otherwise.
std::optional<v1::CostResult> Cost(const PointAggregationInput& in, const v1::PointResult& r,
                                   double devices) {
  const v1::PhaseResult* prefill = FindPhase(r, v1::PHASE_PREFILL);
  const v1::PhaseResult* decode = FindPhase(r, v1::PHASE_DECODE);
  if (prefill == nullptr || decode == nullptr) return std::nullopt;
  const double ttft = prefill->step_time().mean();
  const double tpot = decode->step_time().mean();
  if (ttft <= 0 || tpot <= 0 || devices <= 0) return std::nullopt;
  PriceOptions options;
  if (in.pricing.has_usd_per_device_hour()) {
    options.usd_per_device_hour = in.pricing.usd_per_device_hour();
  }
  if (in.pricing.has_amortize_hours()) options.amortize_hours = in.pricing.amortize_hours();
  if (in.pricing.has_usd_per_kwh()) options.usd_per_kwh = in.pricing.usd_per_kwh();
  // A measured decode power prices the energy part of an amortised price (METRICS.md v2).
  if (decode->has_energy_joules_per_step() && decode->mean_power_watts() > 0) {
    options.measured_watts_per_device = decode->mean_power_watts() / devices;
  }
  HardwareSpec hw;
  bool hw_known = false;
  if (in.catalog != nullptr && !r.hardware().empty() && r.hardware() != "mixed") {
    if (absl::StatusOr<const HardwareSpec*> found = in.catalog->FindHardware(r.hardware());
        found.ok()) {
      hw = **found;
      hw_known = true;
    }
  }
  if (!hw_known && !options.usd_per_device_hour.has_value()) return std::nullopt;
  absl::StatusOr<HourlyPrice> price = DeviceHourlyPrice(hw, options);
  if (!price.ok()) return std::nullopt;
  const v1::PointWorkload& w = in.workload;
  v1::CostResult cost;
  cost.set_usd_per_device_hour(price->usd_per_device_hour);
  cost.set_price_basis(price->basis);
  cost.set_energy_basis(price->energy_basis);
  cost.set_watts_per_device(price->watts_per_device);
  const double t = BatchSeconds(ttft, tpot, w.output_len());
  cost.set_batch_seconds(t);
  const double output_tokens = static_cast<double>(w.batch_size() * w.output_len());
  const double total_tokens =
      static_cast<double>(w.batch_size() * (w.prompt_len() + w.output_len()));
  cost.set_usd_per_million_output_tokens(
      UsdPerMillionTokens(price->usd_per_device_hour, devices, t, output_tokens));
  cost.set_usd_per_million_total_tokens(
      UsdPerMillionTokens(price->usd_per_device_hour, devices, t, total_tokens));
  if (hw_known) {
    cost.set_system_purchase_usd(hw.purchase_usd * devices);
    cost.set_moecap_system_cost_usd(MoeCapSystemCostUsd(hw, devices, t / 3600.0));
  }
  return cost;
}

}  // namespace

double MoeMeanSeconds(const v1::PhaseTimes& s) {
  return s.gate().mean() + s.dispatch().mean() + s.experts().mean() + s.combine().mean();
}

const v1::PhaseResult* FindPhase(const v1::PointResult& r, v1::Phase phase) {
  for (const v1::PhaseResult& p : r.phases()) {
    if (p.phase() == phase) return &p;
  }
  return nullptr;
}

v1::Percentiles PercentilesOf(const std::vector<double>& values) {
  v1::Percentiles p;
  if (values.empty()) return p;
  const Summary s = Summarize(values);
  p.set_min(s.min);
  p.set_p50(s.p50);
  p.set_p90(s.p90);
  p.set_p99(s.p99);
  p.set_max(s.max);
  p.set_mean(s.mean);
  p.set_count(static_cast<int64_t>(values.size()));
  const double n = static_cast<double>(values.size());
  double squares = 0;
  for (double v : values) squares += (v - s.mean) * (v - s.mean);
  p.set_stddev(std::sqrt(squares / n));
  return p;
}

absl::StatusOr<v1::PointResult> AggregatePoint(const PointAggregationInput& in) {
  const v1::PointWorkload& w = in.workload;
  const int world = w.expert_parallel();
  if (world < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("point ", in.point_index, ": workload.expert_parallel must be >= 1"));
  }
  if (w.phases_size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("point ", in.point_index, ": no phases"));
  }
  // Every rank exactly once, over all nodes.
  std::vector<const v1::RankReport*> by_rank(static_cast<size_t>(world), nullptr);
  std::vector<std::string> agent_of_rank(static_cast<size_t>(world));
  std::vector<const v1::Device*> devices;
  for (const v1::NodeReport& node : in.nodes) {
    for (const v1::RankReport& r : node.ranks()) {
      if (r.rank() < 0 || r.rank() >= world) {
        return absl::InvalidArgumentError(absl::StrCat("point ", in.point_index, ": agent '",
                                                       node.agent_id(), "' reports rank ", r.rank(),
                                                       " of a world of ", world));
      }
      if (by_rank[r.rank()] != nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("point ", in.point_index, ": rank ", r.rank(), " is reported twice"));
      }
      by_rank[r.rank()] = &r;
      agent_of_rank[static_cast<size_t>(r.rank())] = node.agent_id();
    }
    const std::vector<const v1::Device*> node_devices = DistinctDevices(node);
    devices.insert(devices.end(), node_devices.begin(), node_devices.end());
  }
  for (int r = 0; r < world; ++r) {
    if (by_rank[r] == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("point ", in.point_index, ": the report of rank ", r, " is missing"));
    }
  }
  if (devices.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("point ", in.point_index, ": no node reported the devices it used"));
  }
  const auto phase_of = [](const v1::RankReport& r, v1::Phase phase) -> const v1::RankPhase* {
    for (const v1::RankPhase& p : r.phases()) {
      if (p.phase() == phase) return &p;
    }
    return nullptr;
  };

  v1::PointResult result;
  result.set_point_index(in.point_index);
  result.mutable_parameters()->Assign(in.parameters.begin(), in.parameters.end());
  result.set_attempt(in.attempt);
  result.set_hardware(HardwareOf(devices));
  result.set_devices(static_cast<int32_t>(devices.size()));
  *result.mutable_finish_time() =
      TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(in.finish_time));
  const Peaks cluster_peaks = SumPeaks(devices, w.dtype());
  std::vector<std::vector<std::vector<int64_t>>> merged;  // [phase i] every rank's, merged
  for (int i = 0; i < w.phases_size(); ++i) {
    const v1::Phase phase = w.phases(i);
    std::vector<RankPhaseRef> ranks;
    for (int r = 0; r < world; ++r) {
      const v1::RankPhase* p = phase_of(*by_rank[r], phase);
      if (p == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("point ", in.point_index, ": rank ", r,
                                                       " did not report phase ",
                                                       v1::Phase_Name(phase)));
      }
      ranks.push_back({r, p});
    }
    *result.add_phases() = AggregatePhase(w, phase, ranks, agent_of_rank, cluster_peaks);
    merged.push_back(MergedHistogram(ranks));
  }
  for (const v1::NodeReport& node : in.nodes) {
    v1::NodeResult* n = result.add_nodes();
    n->set_agent_id(node.agent_id());
    if (auto it = in.agent_names.find(node.agent_id()); it != in.agent_names.end()) {
      n->set_agent_name(it->second);
    }
    n->set_hostname(node.hostname());
    const std::vector<const v1::Device*> node_devices = DistinctDevices(node);
    for (const v1::Device* d : node_devices) *n->add_devices() = *d;
    const Peaks node_peaks = SumPeaks(node_devices, w.dtype());
    std::vector<int> node_ranks;
    for (const v1::RankReport& r : node.ranks()) node_ranks.push_back(r.rank());
    std::sort(node_ranks.begin(), node_ranks.end());
    n->mutable_ranks()->Assign(node_ranks.begin(), node_ranks.end());
    for (int i = 0; i < w.phases_size(); ++i) {
      std::vector<RankPhaseRef> ranks;
      for (int r : node_ranks) ranks.push_back({r, phase_of(*by_rank[r], w.phases(i))});
      if (!ranks.empty()) {
        *n->add_phases() =
            AggregateNodePhase(w.phases(i), merged[static_cast<size_t>(i)], ranks, node_peaks);
      }
    }
  }
  std::vector<const v1::CheckResult*> checks;
  for (const v1::RankReport* r : by_rank) checks.push_back(&r->check());
  *result.mutable_check() = WorstOf(checks);
  if (std::optional<v1::CostResult> cost = Cost(in, result, static_cast<double>(devices.size()));
      cost.has_value()) {
    *result.mutable_cost() = *std::move(cost);
  }
  return result;
}

}  // namespace moecap
