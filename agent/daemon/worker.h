// moecap-agent's worker mode: the rank processes an agent launches are its own binary
// (`moecap-agent --worker --worker-rank R --worker-world N --worker-dir DIR`), which run
// LocalLauncher's worker with the rendezvous store the job describes: the coordinator's
// (GrpcKvStore, scoped to the assignment's rendezvous_prefix) in a cluster.
#ifndef MOECAP_AGENT_DAEMON_WORKER_H_
#define MOECAP_AGENT_DAEMON_WORKER_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "agent/comm/kv_store.h"
#include "agent/daemon/agent_options.h"

namespace moecap::agentd {

// The store description an agent writes into job.json (LaunchOptions::store):
// {"kind": "grpc", "target": "HOST:PORT", "agent_id": ..., "scope": ...}, plus
// "tls": {"ca": PATH, "cert": PATH, "key": PATH, "server_name": NAME} unless `security` is
// insecure: the workers connect with the agent's own certificate (paths only, never the key).
nlohmann::json GrpcStoreDescription(const std::string& target, const std::string& agent_id,
                                    const std::string& scope, const CoordinatorSecurity& security);

// The store a description names. InvalidArgument names the missing or wrong field.
absl::StatusOr<std::unique_ptr<KvStore>> MakeStoreFromDescription(const nlohmann::json& store);

// The worker's entry point; returns the process exit status.
int RunAgentWorker(int rank, int world, const std::string& job_dir);

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_WORKER_H_
