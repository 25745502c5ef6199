// moecap-agent's composition root: builds the inventory (backend, probed or given peaks), the
// metrics, the coordinator channel and client, the AssignmentRunner and the CoordinatorSession,
// and ties their lifetimes: Run serves until Shutdown, then cancels what runs and deregisters.
#ifndef MOECAP_AGENT_DAEMON_AGENT_H_
#define MOECAP_AGENT_DAEMON_AGENT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "agent/daemon/agent_metrics.h"
#include "agent/daemon/agent_options.h"
#include "agent/daemon/assignment_runner.h"
#include "agent/daemon/coordinator_client.h"
#include "agent/daemon/coordinator_session.h"
#include "common/catalog.h"
#include "common/clock.h"
#include "common/telemetry/registry.h"

namespace moecap::agentd {

class Agent {
 public:
  // Resolves the backend, loads the catalog, measures (or takes) the peaks. Errors name the flag.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(AgentOptions options);
  ~Agent();

  // Serves until Shutdown; then stops the running assignment (bounded) and deregisters.
  void Run();
  // From any thread. Idempotent.
  void Shutdown();

  // OK while the agent holds its assignment stream (for /healthz).
  absl::Status Health() const;
  const telemetry::Registry& registry() const { return registry_; }
  const v1::AgentInfo& info() const { return info_; }

 private:
  Agent() = default;

  AgentOptions options_;
  v1::AgentInfo info_;
  Catalog catalog_;
  telemetry::Registry registry_;
  RealClock clock_;
  std::unique_ptr<AgentMetrics> metrics_;
  std::unique_ptr<CoordinatorClient> client_;
  std::unique_ptr<AssignmentRunner> runner_;
  std::unique_ptr<CoordinatorSession> session_;
};

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_AGENT_H_
