// Assignment checks.
#include "agent/daemon/assignment_check.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "agent/compute/cpu_backend.h"
#include "agent/workload/workload_convert.h"
#include "common/plan/convert.h"
#include "common/plan/plan.h"
#include "common/status_macros.h"

namespace moecap::agentd {

absl::StatusOr<WorkloadConfig> CheckAssignment(const v1::Assignment& a, const v1::AgentInfo& info,
                                               const Catalog& catalog, int threads_per_rank) {
  if (a.world_size() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("assignment.world_size must be >= 1, got ", a.world_size()));
  }
  if (a.ranks().empty()) return absl::InvalidArgumentError("assignment.ranks is empty");
  if (a.rendezvous_prefix().empty() && a.world_size() > 1) {
    return absl::InvalidArgumentError("assignment.rendezvous_prefix is empty");
  }
  std::set<int> ranks;
  std::set<int> devices;
  const auto& inventory = info.inventory().devices();
  for (const v1::RankAssignment& r : a.ranks()) {
    if (r.rank() < 0 || r.rank() >= a.world_size() || !ranks.insert(r.rank()).second) {
      return absl::InvalidArgumentError(absl::StrCat("assignment.ranks: rank ", r.rank(),
                                                     " is out of range or repeated (world ",
                                                     a.world_size(), ")"));
    }
    if (r.device_index() < 0 || r.device_index() >= inventory.size() ||
        !devices.insert(r.device_index()).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "assignment.ranks: device ", r.device_index(), " of rank ", r.rank(),
          " is not one of this agent's ", inventory.size(), " devices or is used twice"));
    }
  }
  const v1::PointWorkload& w = a.workload();
  if (w.expert_parallel() > 0 && w.expert_parallel() != a.world_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("workload.expert_parallel (", w.expert_parallel(),
                     ") differs from assignment.world_size (", a.world_size(), ")"));
  }
  const v1::Device& device = inventory.Get(a.ranks(0).device_index());
  if (!w.hardware().empty() && w.hardware() != device.hardware()) {
    return absl::FailedPreconditionError(absl::StrCat("workload.hardware is '", w.hardware(),
                                                      "' but this agent's devices are '",
                                                      device.hardware(), "'"));
  }
  const int threads = threads_per_rank > 0 ? threads_per_rank : std::max(1, device.cores());
  absl::StatusOr<WorkloadConfig> config = WorkloadConfigFromPoint(w, &catalog, threads);
  if (!config.ok()) return config.status();
  MOECAP_RETURN_IF_ERROR(ValidateWorkload(*config, a.world_size()));
  if (w.backend() == v1::BACKEND_CUDA && info.backend() != v1::BACKEND_CUDA) {
    return absl::FailedPreconditionError(
        "workload.backend: cuda, but this agent runs the CPU backend (start it with --backend "
        "cuda on a GPU host, with a moecap-agent built with CUDA)");
  }
  if (w.backend() == v1::BACKEND_CPU && info.backend() == v1::BACKEND_CUDA) {
    return absl::FailedPreconditionError(
        "workload.backend: cpu, but this agent runs the cuda backend (start a CPU agent, or ask "
        "for backend any)");
  }
  // The plan validator's rule, for this agent's backend; then whether this host's OpenBLAS has
  // what the CPU engine needs for the dtype.
  if (absl::Status s = CheckBackendRunsDtype(info.backend(), DtypeToProto(config->dtype));
      !s.ok()) {
    return absl::UnimplementedError(absl::StrCat("workload.dtype: ", s.message()));
  }
  if (info.backend() != v1::BACKEND_CUDA) {
    MOECAP_RETURN_IF_ERROR(CpuBackend(1).CheckDtype(config->dtype));
  }
  return config;
}

}  // namespace moecap::agentd
