// moecap-agent's worker mode: the rank processes an agent launches are its own binary
// (`moecap-agent --worker --worker-launch DIR/rank-R.launch`), which run LocalLauncher's worker
// with the rendezvous store the launch names: the coordinator's (GrpcKvStore, scoped to the
// assignment's rendezvous_prefix) in a cluster.
#ifndef MOECAP_AGENT_DAEMON_WORKER_H_
#define MOECAP_AGENT_DAEMON_WORKER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/comm/kv_store.h"
#include "agent/daemon/agent_options.h"
#include "moecap/v1/rank.pb.h"

namespace moecap::agentd {

// The coordinator's store as an agent hands it to its ranks (LaunchOptions::grpc_store), with
// the agent's own certificate files (paths only, never the key's bytes) unless `security` is
// insecure.
v1::GrpcStoreEndpoint GrpcStoreEndpointOf(const std::string& target, const std::string& agent_id,
                                          const std::string& scope,
                                          const CoordinatorSecurity& security);

// The store an endpoint names. InvalidArgument names the missing or wrong field.
absl::StatusOr<std::unique_ptr<KvStore>> MakeGrpcStore(const v1::GrpcStoreEndpoint& store);

// The worker's entry point; returns the process exit status.
int RunAgentWorker(const std::string& launch_path);

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_WORKER_H_
