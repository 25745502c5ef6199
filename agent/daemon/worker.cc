// Worker mode: LocalLauncher's worker with a store factory for the coordinator's store.
#include "agent/daemon/worker.h"

#include "absl/strings/str_cat.h"
#include "agent/comm/grpc_kv_store.h"
#include "agent/daemon/coordinator_client.h"
#include "agent/workload/launcher.h"

#ifdef MOECAP_HAVE_CUDA
#include "agent/comm/nccl/nccl_rank.h"
#endif

namespace moecap::agentd {

nlohmann::json GrpcStoreDescription(const std::string& target, const std::string& agent_id,
                                    const std::string& scope, const CoordinatorSecurity& security) {
  nlohmann::json store = {
      {"kind", "grpc"}, {"target", target}, {"agent_id", agent_id}, {"scope", scope}};
  if (!security.insecure) {
    store["tls"] = {{"ca", security.ca_file},
                    {"cert", security.cert_file},
                    {"key", security.key_file},
                    {"server_name", security.server_name}};
  }
  return store;
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
  // No "tls": the agent itself talks plaintext (--insecure), and so do its workers.
  CoordinatorSecurity security;
  security.insecure = !store.contains("tls");
  if (!security.insecure) {
    const nlohmann::json& tls = store["tls"];
    if (!tls.is_object())
      return absl::InvalidArgumentError("job.json store.tls: expected an object");
    const auto text = [&](const char* field) {
      return tls.contains(field) && tls[field].is_string() ? tls[field].get<std::string>()
                                                           : std::string();
    };
    security.ca_file = text("ca");
    security.cert_file = text("cert");
    security.key_file = text("key");
    security.server_name = text("server_name");
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeCoordinatorChannel(store["target"].get<std::string>(), absl::Seconds(1), security);
  if (!channel.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("job.json store.tls: ", channel.status().message()));
  }
  GrpcKvStoreOptions options;
  options.agent_id = store["agent_id"].get<std::string>();
  options.scope = store["scope"].get<std::string>();
  return std::make_unique<GrpcKvStore>(*std::move(channel), std::move(options));
}

int RunAgentWorker(int rank, int world, const std::string& job_dir) {
  WorkerHooks hooks;
  hooks.make_store = [](const nlohmann::json& store) { return MakeStoreFromDescription(store); };
#ifdef MOECAP_HAVE_CUDA
  hooks.run_rank = RunRankOnBackend;  // job.json "backend": cpu (Gloo) or cuda (NCCL, one GPU)
#endif
  return RunLocalWorker(rank, world, job_dir, hooks);
}

}  // namespace moecap::agentd
