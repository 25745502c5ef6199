// The agent's side of moecap.v1.AgentService as an interface (the gRPC client, and fakes in tests
// of the reconnect and heartbeat logic): unary calls with a bounded deadline each, and the
// assignment stream, which blocks in Read until an event comes or the stream ends.
#ifndef MOECAP_AGENT_DAEMON_COORDINATOR_CLIENT_H_
#define MOECAP_AGENT_DAEMON_COORDINATOR_CLIENT_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/daemon/agent_options.h"
#include "moecap/v1/agent_service.grpc.pb.h"

namespace moecap::agentd {

class AssignmentStream {
 public:
  virtual ~AssignmentStream() = default;
  // Blocks until the next event; false once the stream has ended (then call Finish).
  virtual bool Read(v1::StreamAssignmentsResponse* event) = 0;
  // From any thread: ends the stream, so a blocked Read returns false soon.
  virtual void Cancel() = 0;
  // Why the stream ended. Call once, after Read returned false.
  virtual absl::Status Finish() = 0;
};

// Thread-safe: calls may come from the session, the heartbeat loop and the runner at once.
class CoordinatorClient {
 public:
  virtual ~CoordinatorClient() = default;
  virtual absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request) = 0;
  virtual absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) = 0;
  virtual std::unique_ptr<AssignmentStream> StreamAssignments(const std::string& agent_id) = 0;
  virtual absl::StatusOr<v1::ReportProgressResponse> ReportProgress(
      const v1::ReportProgressRequest& request) = 0;
  virtual absl::Status ReportRank(const v1::ReportRankRequest& request) = 0;
  virtual absl::Status ReportNode(const v1::ReportNodeRequest& request) = 0;
  virtual absl::Status ReportFailure(const v1::ReportFailureRequest& request) = 0;
  virtual absl::Status Deregister(const v1::DeregisterRequest& request) = 0;
};

// The startup check of the agent's transport flags: TLS (--tls-ca, --tls-cert and --tls-key
// together) or --insecure, exactly one. InvalidArgument says what to pass.
absl::Status ValidateSecurity(const CoordinatorSecurity& security);

// A channel to the coordinator at `target` (HOST:PORT) that notices a dead peer (keepalive
// pings) and retries its connection at most about every `max_reconnect`; calls fail fast
// (UNAVAILABLE) while it is down, so the agent's own backoff decides when to try again.
// TLS per `security` (its PEM files are read now: InvalidArgument names an unreadable one).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeCoordinatorChannel(
    const std::string& target, absl::Duration max_reconnect, const CoordinatorSecurity& security);

// Each unary call gets `rpc_timeout`.
std::unique_ptr<CoordinatorClient> MakeGrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel,
                                                             absl::Duration rpc_timeout);

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_COORDINATOR_CLIENT_H_
