// Agent: wiring and lifetime of the agent's parts.
#include "agent/daemon/agent.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/daemon/inventory.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

#ifdef MOECAP_HAVE_CUDA
#include "agent/compute/cuda/cuda_backend.h"
#include "agent/compute/cuda/cuda_probes.h"
#endif

namespace moecap::agentd {
namespace {

// Probes the GPUs whose peaks neither the operator nor the catalog gives (a few seconds each).
std::map<int, MeasuredGpuPeaks> MeasureUnknownGpus(const InventoryOptions& options,
                                                   const GpuDiscovery& gpus) {
  std::map<int, MeasuredGpuPeaks> measured;
#ifdef MOECAP_HAVE_CUDA
  for (const GpuInfo& gpu : gpus.gpus) {
    const bool need_bw = options.peak_bandwidth_gb_s <= 0 && gpu.peak_bandwidth_bytes_s <= 0;
    const bool need_flops = gpu.peak_flops.empty();
    if (!need_bw && !need_flops) continue;
    absl::StatusOr<std::unique_ptr<cuda::CudaBackend>> backend =
        cuda::CudaBackend::Create(gpu.index);
    if (!backend.ok()) {
      spdlog::warn("GPU {} ({}): cannot probe its peaks: {}", gpu.index, gpu.name,
                   std::string(backend.status().message()));
      continue;
    }
    MeasuredGpuPeaks& peaks = measured[gpu.index];
    if (need_bw) {
      if (absl::StatusOr<double> bw = cuda::ProbeCopyBandwidth(**backend); bw.ok()) {
        peaks.bandwidth_bytes_per_s = *bw;
      }
    }
    if (need_flops) {
      if (absl::StatusOr<double> f = cuda::ProbeGemmFlops(**backend, Dtype::kBf16); f.ok()) {
        peaks.bf16_flops_per_s = *f;
      }
      if (absl::StatusOr<double> f = cuda::ProbeGemmFlops(**backend, Dtype::kFp32); f.ok()) {
        peaks.fp32_flops_per_s = *f;
      }
    }
    spdlog::info("GPU {} ({}): {}; measured {:.1f} GB/s copy, {:.1f} bf16 TFLOP/s", gpu.index,
                 gpu.name, gpu.peak_source, peaks.bandwidth_bytes_per_s / 1e9,
                 peaks.bf16_flops_per_s / 1e12);
  }
#else
  (void)options;
  (void)gpus;
#endif
  return measured;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Agent>> Agent::Create(AgentOptions options) {
  if (options.coordinator.empty()) {
    return absl::InvalidArgumentError(
        "--coordinator (or MOECAP_COORDINATOR): the coordinator's HOST:PORT is required");
  }
  if (options.executable.empty()) {
    return absl::InvalidArgumentError("the agent's own executable path is unknown");
  }
  MOECAP_RETURN_IF_ERROR(ValidateBackoff(options.reconnect));
  std::unique_ptr<Agent> agent(new Agent());
  absl::StatusOr<Catalog> catalog = Catalog::Load(options.inventory.catalog_dirs);
  if (!catalog.ok()) return catalog.status();
  agent->catalog_ = *std::move(catalog);
  // GPUs through NVML (loaded at run time, so a host without a driver just finds none).
  GpuDiscovery gpus;
  if (options.inventory.backend != BackendChoice::kCpu) {
    absl::StatusOr<GpuDiscovery> found = DiscoverGpus(agent->catalog_);
    if (found.ok()) {
      gpus = *std::move(found);
    } else {
      gpus.reason = std::string(found.status().message());
    }
  }
  absl::StatusOr<v1::Backend> backend =
      ResolveBackend(options.inventory.backend, CudaBackendBuiltIn(), gpus);
  if (!backend.ok()) return backend.status();

  absl::StatusOr<v1::HardwareInventory> inventory;
  if (*backend == v1::BACKEND_CUDA) {
    for (const GpuInfo& gpu : gpus.gpus) {
      spdlog::info("GPU {}: {} ({:.1f} GiB, PCI {}, {} NVLink(s) up); peaks: {}", gpu.index,
                   gpu.name, gpu.memory_bytes / 1073741824.0, gpu.pci_bus_id, gpu.nvlinks_active,
                   gpu.peak_source);
    }
    inventory = GpuInventory(options.inventory, gpus, MeasureUnknownGpus(options.inventory, gpus));
  } else {
    const absl::Time probe_start = absl::Now();
    absl::StatusOr<HostPeaks> peaks = MeasureHostPeaks(options.inventory);
    if (!peaks.ok()) return peaks.status();
    spdlog::info("host peaks: {:.1f} GB/s ({}), {:.1f} fp32 GFLOP/s ({}){}",
                 peaks->bandwidth_bytes_per_s / 1e9, v1::PeakSource_Name(peaks->bandwidth_source),
                 peaks->fp32_flops_per_s / 1e9, v1::PeakSource_Name(peaks->flops_source),
                 absl::StrCat(" in ", absl::FormatDuration(absl::Now() - probe_start)));
    inventory = CpuInventory(options.inventory, *peaks, agent->catalog_);
  }
  if (!inventory.ok()) return inventory.status();
  agent->info_ = MakeAgentInfo(options, *backend, *std::move(inventory));
  agent->options_ = std::move(options);
  const AgentOptions& o = agent->options_;

  absl::StatusOr<std::unique_ptr<AgentMetrics>> metrics =
      AgentMetrics::Create(agent->registry_, agent->info_.name(),
                           *backend == v1::BACKEND_CUDA ? "cuda" : "cpu", o.version);
  if (!metrics.ok()) return metrics.status();
  agent->metrics_ = *std::move(metrics);
  agent->metrics_->SetInventory(agent->info_.inventory());

  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeCoordinatorChannel(o.coordinator, o.reconnect.max, o.security);
  if (!channel.ok()) return channel.status();
  agent->client_ = MakeGrpcCoordinatorClient(*std::move(channel), o.rpc_timeout);
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
