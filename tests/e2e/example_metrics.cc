// Every declared metric with deterministic example children (see example_metrics.h).
#include "tests/e2e/example_metrics.h"

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/telemetry/metric_names.h"

namespace moecap::telemetry::testing {
namespace {

// Sets one gauge child; labels in the family's order.
absl::Status SetGauge(Registry& registry, absl::string_view name,
                      const std::vector<std::string>& labels, double value) {
  absl::StatusOr<GaugeFamily*> family = registry.GetGauge(name);
  if (!family.ok()) return family.status();
  absl::StatusOr<std::shared_ptr<Gauge>> child = (*family)->WithLabels(labels);
  if (!child.ok()) return child.status();
  (*child)->Set(value);
  return absl::OkStatus();
}

absl::Status AddCounter(Registry& registry, absl::string_view name,
                        const std::vector<std::string>& labels, double value) {
  absl::StatusOr<CounterFamily*> family = registry.GetCounter(name);
  if (!family.ok()) return family.status();
  absl::StatusOr<std::shared_ptr<Counter>> child = (*family)->WithLabels(labels);
  if (!child.ok()) return child.status();
  (*child)->Increment(value);
  return absl::OkStatus();
}

absl::Status Observe(Registry& registry, absl::string_view name,
                     const std::vector<std::string>& labels, const std::vector<double>& values) {
  absl::StatusOr<HistogramFamily*> family = registry.GetHistogram(name);
  if (!family.ok()) return family.status();
  absl::StatusOr<std::shared_ptr<Histogram>> child = (*family)->WithLabels(labels);
  if (!child.ok()) return child.status();
  for (double v : values) (*child)->Observe(v);
  return absl::OkStatus();
}

}  // namespace

absl::Status PopulateExampleMetrics(Registry& registry) {
  MOECAP_RETURN_IF_ERROR(registry.Register(kCoordinatorMetrics));
  MOECAP_RETURN_IF_ERROR(registry.Register(kAgentMetrics));

  const std::string job = "e2e-job";
  const std::string model = "mixtral-8x7b";
  const std::string hardware = "h100-sxm";
  const std::string batch = "8";
  std::vector<absl::Status> results;

  // Coordinator.
  const char* agent_states[] = {"idle", "busy", "lost"};
  for (int i = 0; i < 3; ++i) results.push_back(SetGauge(registry, kAgents, {agent_states[i]}, i));
  results.push_back(SetGauge(registry, kAgentUp, {"node-a"}, 1));
  results.push_back(SetGauge(registry, kAgentUp, {"node-b"}, 1));
  const char* job_states[] = {"queued",      "scheduled", "rendezvous", "running",
                              "aggregating", "succeeded", "failed",     "cancelled"};
  for (const char* state : job_states) {
    results.push_back(
        SetGauge(registry, kJobs, {state}, std::string(state) == "succeeded" ? 3 : 0));
  }
  results.push_back(AddCounter(registry, kJobsSubmittedTotal, {}, 4));
  results.push_back(AddCounter(registry, kJobsFinishedTotal, {"succeeded"}, 3));
  results.push_back(AddCounter(registry, kJobsFinishedTotal, {"failed"}, 0));
  results.push_back(SetGauge(registry, kJobQueueDepth, {}, 1));
  results.push_back(SetGauge(registry, kJobQueueOldestAgeSeconds, {}, 12.5));
  results.push_back(Observe(registry, kSchedulingLatencySeconds, {}, {0.25, 0.5, 2}));
  const std::vector<std::string> submit = {"moecap.v1.Coordinator", "SubmitPlan", "unary", "OK"};
  results.push_back(AddCounter(registry, kGrpcServerHandledTotal, submit, 4));
  results.push_back(Observe(registry, kGrpcServerHandlingSeconds, submit, {0.001, 0.002}));
  const std::vector<std::string> bad = {"moecap.v1.Coordinator", "SubmitPlan", "unary",
                                        "INVALID_ARGUMENT"};
  results.push_back(AddCounter(registry, kGrpcServerHandledTotal, bad, 1));
  results.push_back(Observe(registry, kGrpcServerHandlingSeconds, bad, {0.0005}));

  // Results of point 0: prefill and decode.
  struct PhaseValues {
    const char* phase;
    double s_mbu, s_mfu, dense_mbu, dense_mfu, p50, p90, p99, sum, bytes, flops, imbalance;
    uint64_t steps;
  };
  const PhaseValues phases[] = {
      {"prefill", 0.125, 0.375, 0.5, 0.75, 0.25, 0.375, 0.5, 2.5, 96e9, 1.5e15, 1.25, 8},
      {"decode", 0.4375, 0.0625, 0.875, 0.125, 0.015625, 0.03125, 0.0625, 4, 48e9, 2.5e12, 1.125,
       128},
  };
  for (const PhaseValues& p : phases) {
    const std::vector<std::string> labels = {job, "0", model, hardware, p.phase, batch};
    results.push_back(SetGauge(registry, kResultSparseMbu, labels, p.s_mbu));
    results.push_back(SetGauge(registry, kResultSparseMfu, labels, p.s_mfu));
    results.push_back(SetGauge(registry, kResultDenseMbu, labels, p.dense_mbu));
    results.push_back(SetGauge(registry, kResultDenseMfu, labels, p.dense_mfu));
    results.push_back(SetGauge(registry, kResultStepBytes, labels, p.bytes));
    results.push_back(SetGauge(registry, kResultStepFlops, labels, p.flops));
    // Measured energy, as a result from devices with counters reports it.
    results.push_back(SetGauge(registry, kResultJoulesPerToken, labels, p.s_mbu * 2));
    results.push_back(SetGauge(registry, kResultPowerWatts, labels, 700));
    absl::StatusOr<SummaryFamily*> steps = registry.GetSummary(kResultStepSeconds);
    if (!steps.ok()) return steps.status();
    absl::StatusOr<std::shared_ptr<Summary>> summary = (*steps)->WithLabels(labels);
    if (!summary.ok()) return summary.status();
    results.push_back((*summary)->Set({p.p50, p.p90, p.p99}, p.sum, p.steps));
    results.push_back(
        SetGauge(registry, kResultImbalanceRatio, {job, "0", p.phase, batch}, p.imbalance));
    for (const char* node : {"node-a", "node-b"}) {
      const std::vector<std::string> node_labels = {job, "0", p.phase, batch, node};
      results.push_back(SetGauge(registry, kResultNodeSparseMbu, node_labels, p.s_mbu));
      results.push_back(SetGauge(registry, kResultNodeSparseMfu, node_labels, p.s_mfu));
    }
  }
  const std::vector<std::string> point = {job, "0", model, hardware, batch};
  results.push_back(SetGauge(registry, kResultUsdPerMillionOutputTokens, point, 1.75));
  results.push_back(SetGauge(registry, kResultUsdPerMillionTotalTokens, point, 0.875));
  results.push_back(SetGauge(registry, kResultOutputTokensPerSecond, point, 512));
  results.push_back(SetGauge(registry, kResultDevices, point, 16));

  // Agent (this registry plays one agent, node-a, as well).
  const std::string agent = "node-a";
  results.push_back(SetGauge(registry, kAgentInfo, {agent, "cpu", "0.1.0"}, 1));
  results.push_back(SetGauge(registry, kAgentDevices, {agent, "gpu"}, 8));
  for (const char* device : {"0", "1"}) {
    results.push_back(SetGauge(registry, kAgentDeviceMemoryBytes, {agent, device, hardware}, 80e9));
    results.push_back(SetGauge(registry, kAgentDevicePeakBandwidthBytesPerSecond,
                               {agent, device, hardware}, 3.35e12));
    results.push_back(SetGauge(registry, kAgentDevicePeakFlopsPerSecond,
                               {agent, device, hardware, "bf16"}, 989.5e12));
  }
  results.push_back(SetGauge(registry, kAgentCoordinatorConnected, {agent}, 1));
  results.push_back(AddCounter(registry, kAgentHeartbeatFailuresTotal, {agent}, 2));
  results.push_back(SetGauge(registry, kAgentCurrentJobInfo, {agent, job, "0"}, 1));
  for (const char* phase : {"prefill", "decode"}) {
    const std::vector<std::string> labels = {agent, job, phase};
    results.push_back(Observe(registry, kAgentStepSeconds, labels, {0.015625, 0.03125, 0.25}));
    results.push_back(AddCounter(registry, kAgentCountedBytesTotal, labels, 48e9));
    results.push_back(AddCounter(registry, kAgentCountedFlopsTotal, labels, 2.5e12));
    results.push_back(AddCounter(registry, kAgentTokensTotal, labels, 1024));
  }
  for (const char* op : {"all_to_all", "all_reduce"}) {
    results.push_back(AddCounter(registry, kAgentCommBytesTotal, {agent, job, op}, 1.5e9));
    results.push_back(AddCounter(registry, kAgentCommSecondsTotal, {agent, job, op}, 0.375));
  }

  for (const absl::Status& status : results) {
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace moecap::telemetry::testing
