// The agent's connection to the coordinator over its whole life: register (with the previous id
// after a reconnect), keep the lease (HeartbeatLoop), hold the assignment stream open and hand
// its events to the AssignmentHandler; when the stream ends or the registration is lost,
// register again after an exponential backoff with jitter. Never gives up until Shutdown.
#ifndef MOECAP_AGENT_DAEMON_COORDINATOR_SESSION_H_
#define MOECAP_AGENT_DAEMON_COORDINATOR_SESSION_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/daemon/agent_metrics.h"
#include "agent/daemon/backoff.h"
#include "agent/daemon/coordinator_client.h"
#include "common/clock.h"
#include "moecap/v1/agent.pb.h"

namespace moecap::agentd {

// What the session hands on (the AssignmentRunner implements it).
class AssignmentHandler {
 public:
  virtual ~AssignmentHandler() = default;
  virtual void OnAssignment(const v1::Assignment& assignment) = 0;
  virtual void OnCancel(const v1::Cancel& cancel) = 0;
  virtual void OnDrain() = 0;
  // The agent registered again (the coordinator restarted, or had declared it lost): the
  // coordinator has already failed or requeued whatever this agent was running, so stop it.
  virtual void OnReregistered() {}
  // The agent's state for heartbeats: state, current job, point and attempt.
  virtual v1::HeartbeatRequest State() = 0;
};

struct SessionOptions {
  BackoffOptions reconnect;
  // A stream that stayed up this long was a healthy connection: the backoff starts over.
  absl::Duration healthy_connection = absl::Seconds(10);
  // When the coordinator suggests no heartbeat interval: a third of the lease.
  double lease_fraction = 1.0 / 3.0;
};

class CoordinatorSession {
 public:
  // Everything passed by reference must outlive the session; `metrics` may be null.
  CoordinatorSession(CoordinatorClient& client, Clock& clock, v1::AgentInfo info,
                     SessionOptions options, AssignmentHandler& handler, AgentMetrics* metrics,
                     std::function<double()> uniform01 = nullptr);

  // Connects, serves and reconnects until Shutdown; returns after it.
  void Run();
  // From any thread (a signal handler's thread): ends Run soon. Idempotent.
  void Shutdown();
  // The id of the current registration; the last one while reconnecting; empty before the first.
  std::string agent_id() const;
  bool connected() const;
  // A clean goodbye after Run returned (bounded by the client's RPC timeout).
  absl::Status Deregister(absl::string_view reason);
  // Registrations that succeeded (1 + reconnects), for tests and logs.
  int registrations() const;

 private:
  // One connection: register, stream until it ends. Returns whether it got registered.
  bool ServeOnce(absl::Time& connected_at);
  void HandleEvent(const v1::StreamAssignmentsResponse& event);

  CoordinatorClient& client_;
  Clock& clock_;
  const v1::AgentInfo info_;
  const SessionOptions options_;
  AssignmentHandler& handler_;
  AgentMetrics* const metrics_;
  Backoff backoff_;
  absl::Notification stop_;

  mutable absl::Mutex mu_;
  std::string agent_id_ ABSL_GUARDED_BY(mu_);
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  int registrations_ ABSL_GUARDED_BY(mu_) = 0;
  AssignmentStream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;  // the open stream, to cancel it
};

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_COORDINATOR_SESSION_H_
