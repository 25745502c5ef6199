// The whole coordinator in one object: builds the managers (registry, rendezvous store, job
// store, job manager), the gRPC services (with health and reflection), the /metrics server and
// the maintenance thread, from CoordinatorOptions. `moecap-coordinator` runs one; `moecapctl run
// --local` and tests embed one in-process.
#ifndef MOECAP_COORDINATOR_COORDINATOR_SERVER_H_
#define MOECAP_COORDINATOR_COORDINATOR_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/catalog.h"
#include "common/clock.h"
#include "common/telemetry/metrics_server.h"
#include "common/telemetry/registry.h"
#include "coordinator/agent_registry.h"
#include "coordinator/agent_stream_hub.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/coordinator_options.h"
#include "coordinator/job_event_hub.h"
#include "coordinator/job_manager.h"
#include "coordinator/job_store.h"
#include "coordinator/rendezvous_store.h"
#include "coordinator/submission_queue.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace moecap::coordinator {

class AgentServiceImpl;
class Authorizer;
class JobServiceImpl;
class RendezvousServiceImpl;

class CoordinatorServer {
 public:
  // Loads the catalog and the job database, recovers the jobs, binds and starts serving.
  // Unavailable when the address cannot be bound or the database opened; the catalog's and
  // the store's errors otherwise. `clock` (default: real time) must outlive the server.
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(CoordinatorOptions options,
                                                                  const Clock* clock = nullptr);
  ~CoordinatorServer();  // Shutdown()
  CoordinatorServer(const CoordinatorServer&) = delete;
  CoordinatorServer& operator=(const CoordinatorServer&) = delete;

  int port() const { return port_; }
  // "HOST:PORT" with the bound port (the listen host as given).
  const std::string& address() const { return address_; }
  int metrics_port() const { return metrics_server_ == nullptr ? 0 : metrics_server_->port(); }

  // Stops accepting calls, ends the agents' and watchers' streams, gives in-flight calls up to
  // options.shutdown_grace, stops the maintenance thread and the metrics server. Idempotent.
  void Shutdown();

  JobManager& jobs() { return *jobs_; }
  AgentRegistry& agents() { return *registry_; }
  const telemetry::Registry& metrics_registry() const { return metrics_registry_; }

 private:
  explicit CoordinatorServer(CoordinatorOptions options);
  absl::Status Init(const Clock* clock);
  void MaintenanceLoop();

  const CoordinatorOptions options_;
  RealClock real_clock_;
  const Clock* clock_ = nullptr;
  Catalog catalog_;
  telemetry::Registry metrics_registry_;
  std::unique_ptr<CoordinatorMetrics> metrics_;
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<AgentRegistry> registry_;
  std::unique_ptr<RendezvousStore> rendezvous_;
  std::unique_ptr<AgentStreamHub> streams_;
  std::unique_ptr<JobEventHub> events_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<Authorizer> authorizer_;        // outlives the services, which keep a reference
  std::unique_ptr<SubmissionQueue> submissions_;  // outlives the server: it answers calls
  std::unique_ptr<JobServiceImpl> job_service_;
  std::unique_ptr<AgentServiceImpl> agent_service_;
  std::unique_ptr<RendezvousServiceImpl> rendezvous_service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<telemetry::MetricsServer> metrics_server_;
  int port_ = 0;
  std::string address_;
  absl::Notification stop_;
  std::thread maintenance_;
  absl::Mutex shutdown_mu_;
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_COORDINATOR_SERVER_H_
