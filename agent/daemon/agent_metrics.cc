// AgentMetrics: updates of the kAgentMetrics families.
#include "agent/daemon/agent_metrics.h"

#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/stats.h"
#include "common/status_macros.h"
#include "common/telemetry/metric_names.h"
#include "spdlog/spdlog.h"

namespace moecap::agentd {
namespace {

namespace t = ::moecap::telemetry;

std::string DtypeLabel(v1::Dtype dtype) {
  switch (dtype) {
    case v1::DTYPE_FP32:
      return "fp32";
    case v1::DTYPE_BF16:
      return "bf16";
    case v1::DTYPE_FP16:
      return "fp16";
    case v1::DTYPE_FP8:
      return "fp8";
    default:
      return "unspecified";
  }
}

// Metric updates never fail the agent: a label mistake is logged and the update dropped.
template <typename Metric>
std::shared_ptr<Metric> ChildOf(absl::StatusOr<t::Family<Metric>*> family,
                                const std::vector<std::string>& labels) {
  if (!family.ok()) {
    spdlog::debug("metrics: {}", family.status().ToString());
    return nullptr;
  }
  absl::StatusOr<std::shared_ptr<Metric>> child = (*family)->WithLabels(labels);
  if (!child.ok()) {
    spdlog::debug("metrics: {}", child.status().ToString());
    return nullptr;
  }
  return *std::move(child);
}

}  // namespace

absl::StatusOr<std::unique_ptr<AgentMetrics>> AgentMetrics::Create(telemetry::Registry& registry,
                                                                   std::string agent,
                                                                   std::string backend,
                                                                   std::string version) {
  MOECAP_RETURN_IF_ERROR(registry.Register(t::kAgentMetrics));
  std::unique_ptr<AgentMetrics> metrics(new AgentMetrics(registry, std::move(agent)));
  if (auto info = ChildOf(registry.GetGauge(t::kAgentInfo), {metrics->agent_, backend, version})) {
    info->Set(1);
  }
  metrics->SetConnected(false);
  // Created at 0 now, so that increase() sees the first failure (docs/monitoring.md).
  ChildOf(registry.GetCounter(t::kAgentHeartbeatFailuresTotal), {metrics->agent_});
  return metrics;
}

AgentMetrics::AgentMetrics(telemetry::Registry& registry, std::string agent)
    : registry_(registry), agent_(std::move(agent)) {}

void AgentMetrics::SetInventory(const v1::HardwareInventory& inventory) {
  int gpus = 0;
  int cpus = 0;
  for (const v1::Device& d : inventory.devices()) {
    (d.kind() == v1::DEVICE_KIND_GPU ? gpus : cpus) += 1;
    const std::vector<std::string> labels = {agent_, absl::StrCat(d.index()), d.hardware()};
    if (auto g = ChildOf(registry_.GetGauge(t::kAgentDeviceMemoryBytes), labels)) {
      g->Set(static_cast<double>(d.memory_bytes()));
    }
    if (auto g = ChildOf(registry_.GetGauge(t::kAgentDevicePeakBandwidthBytesPerSecond), labels)) {
      g->Set(d.peak_bandwidth_bytes_per_s());
    }
    for (const v1::DtypeFlops& f : d.peak_flops()) {
      if (auto g =
              ChildOf(registry_.GetGauge(t::kAgentDevicePeakFlopsPerSecond),
                      {agent_, absl::StrCat(d.index()), d.hardware(), DtypeLabel(f.dtype())})) {
        g->Set(f.flops_per_s());
      }
    }
  }
  if (auto g = ChildOf(registry_.GetGauge(t::kAgentDevices), {agent_, "gpu"})) g->Set(gpus);
  if (auto g = ChildOf(registry_.GetGauge(t::kAgentDevices), {agent_, "cpu"})) g->Set(cpus);
}

void AgentMetrics::SetConnected(bool connected) {
  if (auto g = ChildOf(registry_.GetGauge(t::kAgentCoordinatorConnected), {agent_})) {
    g->Set(connected ? 1 : 0);
  }
}

void AgentMetrics::HeartbeatFailed() {
  if (auto c = ChildOf(registry_.GetCounter(t::kAgentHeartbeatFailuresTotal), {agent_})) {
    c->Increment();
  }
}

void AgentMetrics::JobStarted(const std::string& job_id, int point_index) {
  absl::MutexLock lock(&mu_);
  if (!last_job_.empty()) {
    // Bounded series: only the latest job's step and counter series are exported.
    for (const char* name :
         {t::kAgentCountedBytesTotal, t::kAgentCountedFlopsTotal, t::kAgentTokensTotal,
          t::kAgentCommBytesTotal, t::kAgentCommSecondsTotal}) {
      if (auto family = registry_.GetCounter(name); family.ok()) (*family)->RemoveAll();
    }
    if (auto family = registry_.GetHistogram(t::kAgentStepSeconds); family.ok()) {
      (*family)->RemoveAll();
    }
  }
  if (auto family = registry_.GetGauge(t::kAgentCurrentJobInfo); family.ok()) {
    (*family)->RemoveAll();
  }
  current_job_ = job_id;
  current_point_ = absl::StrCat(point_index);
  last_job_ = job_id;
  if (auto g = ChildOf(registry_.GetGauge(t::kAgentCurrentJobInfo),
                       {agent_, current_job_, current_point_})) {
    g->Set(1);
  }
}

void AgentMetrics::JobFinished() {
  absl::MutexLock lock(&mu_);
  if (auto family = registry_.GetGauge(t::kAgentCurrentJobInfo); family.ok()) {
    (*family)->RemoveAll();
  }
  current_job_.clear();
  current_point_.clear();
}

void AgentMetrics::RecordResults(const std::string& job_id,
                                 const std::vector<v1::RankReport>& ranks) {
  if (ranks.empty()) return;
  for (int i = 0; i < ranks.front().phases_size(); ++i) {
    const std::string phase =
        ranks.front().phases(i).phase() == v1::PHASE_PREFILL ? "prefill" : "decode";
    const std::vector<std::string> labels = {agent_, job_id, phase};
    std::vector<std::vector<double>> step_seconds;
    double bytes = 0;
    double flops = 0;
    double tokens = 0;
    double comm_bytes = 0;
    double comm_seconds = 0;
    for (const v1::RankReport& rank : ranks) {
      if (i >= rank.phases_size()) continue;
      const v1::RankPhase& p = rank.phases(i);
      const double iterations = static_cast<double>(p.iterations());
      step_seconds.emplace_back(p.step_seconds().begin(), p.step_seconds().end());
      bytes += p.counts().total_bytes() * iterations;
      flops += p.counts().total_flops() * iterations;
      tokens += static_cast<double>(p.tokens_per_step()) * iterations;
      const v1::Communication& c = p.communication();
      comm_bytes += (c.dispatch_logical_bytes() + c.combine_logical_bytes()) * iterations;
      comm_seconds +=
          (p.sub_times().dispatch().mean() + p.sub_times().combine().mean()) * iterations;
    }
    std::vector<const std::vector<double>*> steps;
    for (const std::vector<double>& s : step_seconds) steps.push_back(&s);
    if (auto h = ChildOf(registry_.GetHistogram(t::kAgentStepSeconds), labels)) {
      for (double s : ElementwiseMax(steps)) h->Observe(s);
    }
    if (auto c = ChildOf(registry_.GetCounter(t::kAgentCountedBytesTotal), labels)) {
      c->Increment(bytes);
    }
    if (auto c = ChildOf(registry_.GetCounter(t::kAgentCountedFlopsTotal), labels)) {
      c->Increment(flops);
    }
    if (auto c = ChildOf(registry_.GetCounter(t::kAgentTokensTotal), labels)) c->Increment(tokens);
    // The MoE layer's collectives are its all-to-alls (dispatch and combine).
    const std::vector<std::string> comm_labels = {agent_, job_id, "all_to_all"};
    if (auto c = ChildOf(registry_.GetCounter(t::kAgentCommBytesTotal), comm_labels)) {
      c->Increment(comm_bytes);
    }
    if (auto c = ChildOf(registry_.GetCounter(t::kAgentCommSecondsTotal), comm_labels)) {
      c->Increment(comm_seconds);
    }
  }
}

}  // namespace moecap::agentd
