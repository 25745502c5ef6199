// The one list of metrics moecap exports: names, label names, buckets and the declaration tables
// the coordinator and the agents register (Registry::Register(kCoordinatorMetrics)). The docs
// (docs/monitoring.md), the Grafana dashboard and the alert rules use exactly these names; tests
// check that they agree. Conventions: `moecap_` prefix, base units (seconds, bytes), `_total`
// on counters.
//
// S-MBU and S-MFU are exported as moecap_result_sparse_mbu/_mfu (beside dense_mbu/_mfu): promtool's
// linter reads the "s" of "s_mbu" as an abbreviated unit (seconds) and rejects the name.
//
// Label `job_id` (not `job`) names a moecap job: Prometheus attaches its own `job` label (the
// scrape job) to every series and would rename ours to `exported_job`.
#ifndef MOECAP_COMMON_TELEMETRY_METRIC_NAMES_H_
#define MOECAP_COMMON_TELEMETRY_METRIC_NAMES_H_

#include "common/telemetry/metric_def.h"

namespace moecap::telemetry {

// ---- Label names ----
inline constexpr char kLabelState[] = "state";
inline constexpr char kLabelAgent[] = "agent";
inline constexpr char kLabelJobId[] = "job_id";
inline constexpr char kLabelPoint[] = "point";
inline constexpr char kLabelModel[] = "model";
inline constexpr char kLabelHardware[] = "hardware";
inline constexpr char kLabelPhase[] = "phase";  // "prefill" or "decode"
inline constexpr char kLabelBatch[] = "batch";
inline constexpr char kLabelGrpcService[] = "grpc_service";
inline constexpr char kLabelGrpcMethod[] = "grpc_method";
inline constexpr char kLabelGrpcType[] = "grpc_type";
inline constexpr char kLabelGrpcCode[] = "grpc_code";
inline constexpr char kLabelBackend[] = "backend";
inline constexpr char kLabelVersion[] = "version";
inline constexpr char kLabelKind[] = "kind";  // device kind: "gpu" or "cpu"
inline constexpr char kLabelDevice[] = "device";
inline constexpr char kLabelDtype[] = "dtype";
inline constexpr char kLabelOp[] = "op";  // collective: all_to_all, all_reduce, ...

// ---- Coordinator metrics ----
inline constexpr char kAgents[] = "moecap_agents";
inline constexpr char kAgentUp[] = "moecap_agent_up";
inline constexpr char kJobs[] = "moecap_jobs";
inline constexpr char kJobsSubmittedTotal[] = "moecap_jobs_submitted_total";
inline constexpr char kJobsFinishedTotal[] = "moecap_jobs_finished_total";
inline constexpr char kJobQueueDepth[] = "moecap_job_queue_depth";
inline constexpr char kJobQueueOldestAgeSeconds[] = "moecap_job_queue_oldest_age_seconds";
inline constexpr char kJobsWaiting[] = "moecap_jobs_waiting";
inline constexpr char kSchedulingLatencySeconds[] = "moecap_scheduling_latency_seconds";
inline constexpr char kGrpcServerHandledTotal[] = "moecap_grpc_server_handled_total";
inline constexpr char kGrpcServerHandlingSeconds[] = "moecap_grpc_server_handling_seconds";
// Results of finished points (per phase).
inline constexpr char kResultSparseMbu[] = "moecap_result_sparse_mbu";
inline constexpr char kResultSparseMfu[] = "moecap_result_sparse_mfu";
inline constexpr char kResultDenseMbu[] = "moecap_result_dense_mbu";
inline constexpr char kResultDenseMfu[] = "moecap_result_dense_mfu";
inline constexpr char kResultStepSeconds[] = "moecap_result_step_seconds";
inline constexpr char kResultStepBytes[] = "moecap_result_step_bytes";
inline constexpr char kResultStepFlops[] = "moecap_result_step_flops";
// Measured energy of a finished point's phase (absent when the devices expose no counter).
inline constexpr char kResultJoulesPerToken[] = "moecap_result_joules_per_token";
inline constexpr char kResultPowerWatts[] = "moecap_result_power_watts";
// Results of finished points (per point).
inline constexpr char kResultUsdPerMillionOutputTokens[] =
    "moecap_result_usd_per_million_output_tokens";
inline constexpr char kResultUsdPerMillionTotalTokens[] =
    "moecap_result_usd_per_million_total_tokens";
inline constexpr char kResultOutputTokensPerSecond[] = "moecap_result_output_tokens_per_second";
inline constexpr char kResultDevices[] = "moecap_result_devices";
// Results of finished points (per node, per phase).
inline constexpr char kResultNodeSparseMbu[] = "moecap_result_node_sparse_mbu";
inline constexpr char kResultNodeSparseMfu[] = "moecap_result_node_sparse_mfu";
inline constexpr char kResultImbalanceRatio[] = "moecap_result_imbalance_ratio";

// ---- Agent metrics ----
inline constexpr char kAgentInfo[] = "moecap_agent_info";
inline constexpr char kAgentDevices[] = "moecap_agent_devices";
inline constexpr char kAgentDeviceMemoryBytes[] = "moecap_agent_device_memory_bytes";
inline constexpr char kAgentDevicePeakBandwidthBytesPerSecond[] =
    "moecap_agent_device_peak_bandwidth_bytes_per_second";
inline constexpr char kAgentDevicePeakFlopsPerSecond[] =
    "moecap_agent_device_peak_flops_per_second";
inline constexpr char kAgentCoordinatorConnected[] = "moecap_agent_coordinator_connected";
inline constexpr char kAgentHeartbeatFailuresTotal[] = "moecap_agent_heartbeat_failures_total";
inline constexpr char kAgentCurrentJobInfo[] = "moecap_agent_current_job_info";
inline constexpr char kAgentStepSeconds[] = "moecap_agent_step_seconds";
inline constexpr char kAgentCountedBytesTotal[] = "moecap_agent_counted_bytes_total";
inline constexpr char kAgentCountedFlopsTotal[] = "moecap_agent_counted_flops_total";
inline constexpr char kAgentTokensTotal[] = "moecap_agent_tokens_total";
inline constexpr char kAgentCommBytesTotal[] = "moecap_agent_comm_bytes_total";
inline constexpr char kAgentCommSecondsTotal[] = "moecap_agent_comm_seconds_total";

// ---- Buckets and quantiles ----
// RPC handling: 0.5 ms .. 10 s.
inline constexpr double kRpcSecondsBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
// Submission to placement: a job may wait in the queue for hours.
inline constexpr double kSchedulingSecondsBuckets[] = {0.01, 0.1, 0.5, 1,    5,    10,  30,
                                                       60,   300, 900, 1800, 3600, 7200};
// One prefill or decode step: 100 µs (a small decode) .. 30 s (a long prefill on CPU).
inline constexpr double kStepSecondsBuckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                 0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                 1,      2.5,     5,      10,    30};
// The step-time percentiles a result reports (as serving benchmarks do: p50, p90, p99).
inline constexpr double kResultQuantiles[] = {0.5, 0.9, 0.99};

// ---- Declarations ----
// Label sets shared by several metrics.
inline constexpr char kPhaseResultLabels[] = "job_id,point,model,hardware,phase,batch";
inline constexpr char kPointResultLabels[] = "job_id,point,model,hardware,batch";
inline constexpr char kNodeResultLabels[] = "job_id,point,phase,batch,agent";
inline constexpr char kGrpcLabels[] = "grpc_service,grpc_method,grpc_type,grpc_code";

inline constexpr MetricDef kCoordinatorMetrics[] = {
    {kAgents, MetricType::kGauge,
     "Registered agents by state: idle, busy (running a job) or lost (lease expired).", "state"},
    {kAgentUp, MetricType::kGauge,
     "1 while the agent holds a current lease, 0 once the coordinator has declared it lost.",
     "agent"},
    {kJobs, MetricType::kGauge,
     "Jobs in the coordinator's database by state: queued, scheduled, rendezvous, running, "
     "aggregating, succeeded, failed, cancelled.",
     "state"},
    {kJobsSubmittedTotal, MetricType::kCounter, "Plans accepted since the coordinator started.",
     ""},
    {kJobsFinishedTotal, MetricType::kCounter,
     "Jobs that reached a final state since the coordinator started, by state: succeeded, "
     "failed, cancelled.",
     "state"},
    {kJobQueueDepth, MetricType::kGauge, "Jobs queued and waiting for agents.", ""},
    {kJobQueueOldestAgeSeconds, MetricType::kGauge,
     "Seconds the oldest queued job has waited; 0 when the queue is empty.", ""},
    {kJobsWaiting, MetricType::kGauge,
     "Queued jobs by their placement verdict: needs_agents (fewer registered agents match than "
     "it needs), agents_busy (enough match, not enough free), behind_job (reserved for an older "
     "job).",
     "why"},
    {kSchedulingLatencySeconds, MetricType::kHistogram,
     "Time from a job's submission to its gang placement on agents.", "",
     kSchedulingSecondsBuckets},
    {kGrpcServerHandledTotal, MetricType::kCounter,
     "gRPC calls completed by the coordinator, by service, method, type and status code.",
     kGrpcLabels},
    {kGrpcServerHandlingSeconds, MetricType::kHistogram,
     "Time from the start of a gRPC call to its status (the whole stream for streaming calls).",
     kGrpcLabels, kRpcSecondsBuckets},
    {kResultSparseMbu, MetricType::kGauge,
     "Sparse memory-bandwidth utilisation (S-MBU, 0..1) of a finished point's phase, cluster-wide.",
     kPhaseResultLabels},
    {kResultSparseMfu, MetricType::kGauge,
     "Sparse FLOP utilisation (S-MFU, 0..1) of a finished point's phase, cluster-wide.",
     kPhaseResultLabels},
    {kResultDenseMbu, MetricType::kGauge,
     "Dense MBU (every expert counted, 0..1) of a finished point's phase, for contrast.",
     kPhaseResultLabels},
    {kResultDenseMfu, MetricType::kGauge,
     "Dense MFU (every expert counted, 0..1) of a finished point's phase, for contrast.",
     kPhaseResultLabels},
    {kResultJoulesPerToken, MetricType::kGauge,
     "Measured energy per token of a finished point's phase (decode: per output token), joules, "
     "from NVML or RAPL counters; absent when the devices expose none.",
     kPhaseResultLabels},
    {kResultPowerWatts, MetricType::kGauge,
     "Measured mean power of the devices during a finished point's phase, watts.",
     kPhaseResultLabels},
    {kResultStepSeconds,
     MetricType::kSummary,
     "Step time of a finished point's phase (prefill: TTFT; decode: TPOT), slowest rank: "
     "quantiles, total and number of steps.",
     kPhaseResultLabels,
     {},
     kResultQuantiles},
    {kResultStepBytes, MetricType::kGauge,
     "Bytes counted for one mean step of the phase, summed over the cluster.", kPhaseResultLabels},
    {kResultStepFlops, MetricType::kGauge,
     "Floating-point operations counted for one mean step of the phase, summed over the cluster.",
     kPhaseResultLabels},
    {kResultUsdPerMillionOutputTokens, MetricType::kGauge,
     "Cost of a finished point in US dollars per million output tokens.", kPointResultLabels},
    {kResultUsdPerMillionTotalTokens, MetricType::kGauge,
     "Cost of a finished point in US dollars per million prompt and output tokens.",
     kPointResultLabels},
    {kResultOutputTokensPerSecond, MetricType::kGauge,
     "Output tokens per second of a finished point's batch (B*O over TTFT + (O-1)*TPOT).",
     kPointResultLabels},
    {kResultDevices, MetricType::kGauge, "Devices a finished point ran on (G).",
     kPointResultLabels},
    {kResultNodeSparseMbu, MetricType::kGauge,
     "S-MBU (0..1) of one node's share of a finished point's phase, over that node's devices.",
     kNodeResultLabels},
    {kResultNodeSparseMfu, MetricType::kGauge,
     "S-MFU (0..1) of one node's share of a finished point's phase, over that node's devices.",
     kNodeResultLabels},
    {kResultImbalanceRatio, MetricType::kGauge,
     "Slowest rank's step time over the fastest rank's for a finished point's phase "
     "(1 is balanced).",
     "job_id,point,phase,batch"},
};

inline constexpr MetricDef kAgentMetrics[] = {
    {kAgentInfo, MetricType::kGauge, "Always 1; labels carry the agent's backend and version.",
     "agent,backend,version"},
    {kAgentDevices, MetricType::kGauge, "Devices this agent offers, by kind: gpu or cpu.",
     "agent,kind"},
    {kAgentDeviceMemoryBytes, MetricType::kGauge, "Memory of one device, in bytes.",
     "agent,device,hardware"},
    {kAgentDevicePeakBandwidthBytesPerSecond, MetricType::kGauge,
     "Peak memory bandwidth of one device (the S-MBU denominator), in bytes per second.",
     "agent,device,hardware"},
    {kAgentDevicePeakFlopsPerSecond, MetricType::kGauge,
     "Dense peak floating-point operations per second of one device for a dtype (the S-MFU "
     "denominator).",
     "agent,device,hardware,dtype"},
    {kAgentCoordinatorConnected, MetricType::kGauge,
     "1 while the agent holds its assignment stream to the coordinator, else 0.", "agent"},
    {kAgentHeartbeatFailuresTotal, MetricType::kCounter,
     "Heartbeats to the coordinator that failed (timeout, unavailable, refused).", "agent"},
    {kAgentCurrentJobInfo, MetricType::kGauge,
     "1 for the job and point the agent is running now; absent while idle.", "agent,job_id,point"},
    {kAgentStepSeconds, MetricType::kHistogram,
     "Time of one measured prefill or decode step on this agent's slowest rank.",
     "agent,job_id,phase", kStepSecondsBuckets},
    {kAgentCountedBytesTotal, MetricType::kCounter,
     "Bytes counted (METRICS.md: weights of the activated experts and KV cache) by this agent's "
     "measured steps.",
     "agent,job_id,phase"},
    {kAgentCountedFlopsTotal, MetricType::kCounter,
     "Floating-point operations counted by this agent's measured steps.", "agent,job_id,phase"},
    {kAgentTokensTotal, MetricType::kCounter, "Tokens processed by this agent's measured steps.",
     "agent,job_id,phase"},
    {kAgentCommBytesTotal, MetricType::kCounter,
     "Bytes this agent's ranks sent through collectives (all_to_all, all_reduce, ...).",
     "agent,job_id,op"},
    {kAgentCommSecondsTotal, MetricType::kCounter,
     "Seconds this agent's ranks spent inside collectives.", "agent,job_id,op"},
};

}  // namespace moecap::telemetry

#endif  // MOECAP_COMMON_TELEMETRY_METRIC_NAMES_H_
