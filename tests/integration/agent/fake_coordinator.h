// A tiny in-process coordinator for the agent's tests: a gRPC server on loopback implementing
// what moecap-agent uses (AgentService: register, heartbeat, the assignment stream, reports,
// deregister; RendezvousService: a real in-memory store with server-side waits) and recording
// everything the agents send, so tests can wait (bounded) for a report and inspect it.
#ifndef MOECAP_TESTS_INTEGRATION_AGENT_FAKE_COORDINATOR_H_
#define MOECAP_TESTS_INTEGRATION_AGENT_FAKE_COORDINATOR_H_

#include <grpcpp/server.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "moecap/v1/agent_service.grpc.pb.h"
#include "moecap/v1/rendezvous_service.grpc.pb.h"

namespace moecap::testing {

struct FakeCoordinatorOptions {
  int port = 0;  // 0: any free port
  double lease_seconds = 10;
  double heartbeat_interval_seconds = 0.25;
};

// Everything the agents sent, in arrival order.
struct Recorded {
  std::vector<v1::RegisterRequest> registrations;
  std::map<std::string, std::string> agent_by_name;            // name -> id
  std::map<std::string, v1::HeartbeatRequest> last_heartbeat;  // by agent id
  std::vector<v1::ReportProgressRequest> progress;
  std::vector<v1::RankReport> ranks;
  std::vector<v1::NodeReport> nodes;
  std::vector<v1::ReportFailureRequest> failures;
  std::vector<v1::DeregisterRequest> deregistrations;
  // "<agent id> <what>" per report, in order: "progress <STAGE>", "rank <r>", "node", "failure".
  std::vector<std::string> log;
  std::set<std::string> streaming;  // agents holding the assignment stream now
  // Rendezvous Gets and Waits blocked on the server now, waiting for a key to be set.
  int rendezvous_waiting = 0;
};

class FakeCoordinator {
 public:
  static absl::StatusOr<std::unique_ptr<FakeCoordinator>> Start(FakeCoordinatorOptions options);
  ~FakeCoordinator();  // Shutdown()

  // Stops serving (ends the streams and the waits of the rendezvous store). Idempotent.
  void Shutdown();
  int port() const { return port_; }
  std::string address() const;

  // Queues an event for the agent's assignment stream (sent once the agent streams).
  void Send(const std::string& agent_id, v1::StreamAssignmentsResponse event);
  // Waits until `done(recorded)` holds, at most `timeout`; true when it does.
  bool WaitFor(const std::function<bool(const Recorded&)>& done, absl::Duration timeout);
  Recorded Snapshot();

  class AgentServiceImpl;
  class RendezvousServiceImpl;

 private:
  FakeCoordinator() = default;

  friend class AgentServiceImpl;
  friend class RendezvousServiceImpl;

  FakeCoordinatorOptions options_;
  int port_ = 0;
  std::unique_ptr<AgentServiceImpl> agent_service_;
  std::unique_ptr<RendezvousServiceImpl> rendezvous_service_;
  std::unique_ptr<grpc::Server> server_;

  absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  int next_agent_ ABSL_GUARDED_BY(mu_) = 1;
  Recorded recorded_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<v1::StreamAssignmentsResponse>> outbox_ ABSL_GUARDED_BY(mu_);
  // Rendezvous: scope -> key -> value.
  std::map<std::string, std::map<std::string, std::string>> store_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> deleted_scopes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace moecap::testing

#endif  // MOECAP_TESTS_INTEGRATION_AGENT_FAKE_COORDINATOR_H_
