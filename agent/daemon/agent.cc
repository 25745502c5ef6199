// Agent: wiring and lifetime of the agent's parts.
#include "agent/daemon/agent.h"

#include "absl/strings/str_cat.h"
#include "agent/daemon/inventory.h"
#include "spdlog/spdlog.h"

namespace moecap::agentd {

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(AgentOptions options) {
  if (options.coordinator.empty()) {
    return absl::InvalidArgumentError(
        "--coordinator (or MOECAP_COORDINATOR): the coordinator's HOST:PORT is required");
  }
  if (options.executable.empty()) {
    return absl::InvalidArgumentError("the agent's own executable path is unknown");
  }
  if (absl::Status s = ValidateBackoff(options.reconnect); !s.ok()) return s;
  std::unique_ptr<Agent> agent(new Agent());
  absl::StatusOr<v1::Backend> backend = ResolveBackend(options.inventory.backend);
  if (!backend.ok()) return backend.status();
  absl::StatusOr<Catalog> catalog = Catalog::Load(options.inventory.catalog_dirs);
  if (!catalog.ok()) return catalog.status();
  agent->catalog_ = *std::move(catalog);

  const absl::Time probe_start = absl::Now();
  absl::StatusOr<HostPeaks> peaks = MeasureHostPeaks(options.inventory);
  if (!peaks.ok()) return peaks.status();
  spdlog::info("host peaks: {:.1f} GB/s ({}), {:.1f} fp32 GFLOP/s ({}){}",
               peaks->bandwidth_bytes_per_s / 1e9, v1::PeakSource_Name(peaks->bandwidth_source),
               peaks->fp32_flops_per_s / 1e9, v1::PeakSource_Name(peaks->flops_source),
               absl::StrCat(" in ", absl::FormatDuration(absl::Now() - probe_start)));
  absl::StatusOr<v1::HardwareInventory> inventory =
      CpuInventory(options.inventory, *peaks, agent->catalog_);
  if (!inventory.ok()) return inventory.status();
  agent->info_ = MakeAgentInfo(options, *backend, *std::move(inventory));
  agent->options_ = std::move(options);
  const AgentOptions& o = agent->options_;

  absl::StatusOr<std::unique_ptr<AgentMetrics>> metrics =
      AgentMetrics::Create(agent->registry_, agent->info_.name(), "cpu", o.version);
  if (!metrics.ok()) return metrics.status();
  agent->metrics_ = *std::move(metrics);
  agent->metrics_->SetInventory(agent->info_.inventory());

  agent->client_ = MakeGrpcCoordinatorClient(MakeCoordinatorChannel(o.coordinator, o.reconnect.max),
                                             o.rpc_timeout);
  RunnerDeps deps;
  deps.client = agent->client_.get();
  deps.clock = &agent->clock_;
  deps.catalog = &agent->catalog_;
  deps.metrics = agent->metrics_.get();
  Agent* self = agent.get();
  deps.agent_id = [self] { return self->session_->agent_id(); };
  agent->runner_ = std::make_unique<AssignmentRunner>(o, agent->info_, std::move(deps));
  SessionOptions session;
  session.reconnect = o.reconnect;
  session.healthy_connection = o.healthy_connection;
  agent->session_ =
      std::make_unique<CoordinatorSession>(*agent->client_, agent->clock_, agent->info_, session,
                                           *agent->runner_, agent->metrics_.get());
  return agent;
}

Agent::~Agent() {
  if (session_ != nullptr) session_->Shutdown();
  if (runner_ != nullptr) runner_->Stop();
}

void Agent::Run() {
  spdlog::info("agent {} ({} device(s), data plane at {}) connecting to {}", info_.name(),
               info_.inventory().devices_size(), info_.data_plane_host(), options_.coordinator);
  session_->Run();
  runner_->Stop();
  if (session_->agent_id().empty()) return;  // never registered
  if (absl::Status s = session_->Deregister("the agent is shutting down"); !s.ok()) {
    spdlog::warn("deregistration failed: {}", s.ToString());
  } else {
    spdlog::info("deregistered");
  }
}

void Agent::Shutdown() { session_->Shutdown(); }

absl::Status Agent::Health() const {
  if (session_->connected()) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("not connected to the coordinator at ", options_.coordinator));
}

}  // namespace moecap::agentd
