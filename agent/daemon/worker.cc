// Worker mode: LocalLauncher's worker with a factory for the coordinator's store.
#include "agent/daemon/worker.h"

#include "absl/strings/str_cat.h"
#include "agent/comm/grpc_kv_store.h"
#include "agent/daemon/coordinator_client.h"
#include "agent/workload/launcher.h"

#ifdef MOECAP_HAVE_CUDA
#include "agent/comm/nccl/nccl_rank.h"
#endif

namespace moecap::agentd {

v1::GrpcStoreEndpoint GrpcStoreEndpointOf(const std::string& target, const std::string& agent_id,
                                          const std::string& scope,
                                          const CoordinatorSecurity& security) {
  v1::GrpcStoreEndpoint store;
  store.set_target(target);
  store.set_agent_id(agent_id);
  store.set_scope(scope);
  if (!security.insecure) {
    v1::TlsFiles& tls = *store.mutable_tls();
    tls.set_ca(security.ca_file);
    tls.set_cert(security.cert_file);
    tls.set_key(security.key_file);
    tls.set_server_name(security.server_name);
  }
  return store;
}

absl::StatusOr<std::unique_ptr<KvStore>> MakeGrpcStore(const v1::GrpcStoreEndpoint& store) {
  for (const auto& [field, value] :
       {std::pair<const char*, const std::string&>{"target", store.target()},
        {"agent_id", store.agent_id()},
        {"scope", store.scope()}}) {
    if (value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("launch grpc_store.", field, ": missing"));
    }
  }
  // No tls: the agent itself talks plaintext (--insecure), and so do its workers.
  CoordinatorSecurity security;
  security.insecure = !store.has_tls();
  if (!security.insecure) {
    security.ca_file = store.tls().ca();
    security.cert_file = store.tls().cert();
    security.key_file = store.tls().key();
    security.server_name = store.tls().server_name();
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeCoordinatorChannel(store.target(), absl::Seconds(1), security);
  if (!channel.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("launch grpc_store.tls: ", channel.status().message()));
  }
  GrpcKvStoreOptions options;
  options.agent_id = store.agent_id();
  options.scope = store.scope();
  return std::make_unique<GrpcKvStore>(*std::move(channel), std::move(options));
}

int RunAgentWorker(const std::string& launch_path) {
  WorkerHooks hooks;
  hooks.make_grpc_store = MakeGrpcStore;
#ifdef MOECAP_HAVE_CUDA
  hooks.run_rank = RunRankOnBackend;  // the launch's backend: cpu (Gloo) or cuda (NCCL, one GPU)
#endif
  return RunLocalWorker(launch_path, hooks);
}

}  // namespace moecap::agentd
