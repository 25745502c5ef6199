// Worker mode: LocalLauncher's worker with a store factory for the coordinator's store.
#include "agent/daemon/worker.h"

#include "absl/strings/str_cat.h"
#include "agent/comm/grpc_kv_store.h"
#include "agent/daemon/coordinator_client.h"
#include "agent/workload/launcher.h"

namespace moecap::agentd {

nlohmann::json GrpcStoreDescription(const std::string& target, const std::string& agent_id,
                                    const std::string& scope) {
  return {{"kind", "grpc"}, {"target", target}, {"agent_id", agent_id}, {"scope", scope}};
}

absl::StatusOr<std::unique_ptr<KvStore>> MakeStoreFromDescription(const nlohmann::json& store) {
  if (!store.is_object()) {
    return absl::InvalidArgumentError("job.json store: expected an object");
  }
  const std::string kind = store.value("kind", "");
  if (kind != "grpc") {
    return absl::InvalidArgumentError(
        absl::StrCat("job.json store.kind: '", kind, "' is not a store this worker knows (grpc)"));
  }
  for (const char* field : {"target", "agent_id", "scope"}) {
    if (!store.contains(field) || !store[field].is_string() ||
        store[field].get<std::string>().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("job.json store.", field, ": missing or empty"));
    }
  }
  GrpcKvStoreOptions options;
  options.agent_id = store["agent_id"].get<std::string>();
  options.scope = store["scope"].get<std::string>();
  return std::make_unique<GrpcKvStore>(
      MakeCoordinatorChannel(store["target"].get<std::string>(), absl::Seconds(1)),
      std::move(options));
}

int RunAgentWorker(int rank, int world, const std::string& job_dir) {
  WorkerHooks hooks;
  hooks.make_store = [](const nlohmann::json& store) { return MakeStoreFromDescription(store); };
  return RunLocalWorker(rank, world, job_dir, hooks);
}

}  // namespace moecap::agentd
