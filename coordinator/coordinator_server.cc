// Assembly of the coordinator.
#include "coordinator/coordinator_server.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/agent_service.h"
#include "coordinator/auth.h"
#include "coordinator/in_memory_job_store.h"
#include "coordinator/job_service.h"
#include "coordinator/rendezvous_service.h"
#include "coordinator/rpc_metrics_interceptor.h"
#include "coordinator/sqlite_job_store.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "spdlog/spdlog.h"

namespace moecap::coordinator {

CoordinatorServer::CoordinatorServer(CoordinatorOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Start(
    CoordinatorOptions options, const Clock* clock) {
  std::unique_ptr<CoordinatorServer> server(new CoordinatorServer(std::move(options)));
  if (absl::Status s = server->Init(clock); !s.ok()) {
    server->Shutdown();
    return s;
  }
  return server;
}

absl::Status CoordinatorServer::Init(const Clock* clock) {
  clock_ = clock != nullptr ? clock : &real_clock_;
  // Transport and caller checks first: a misconfigured server must not start serving at all.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options_.credentials);
  if (!credentials.ok()) return credentials.status();
  absl::StatusOr<std::unique_ptr<Authorizer>> authorizer = Authorizer::Create(options_.credentials);
  if (!authorizer.ok()) return authorizer.status();
  authorizer_ = *std::move(authorizer);
  absl::StatusOr<Catalog> catalog = Catalog::Load(options_.catalog_dirs);
  if (!catalog.ok()) return catalog.status();
  catalog_ = *std::move(catalog);

  absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> metrics =
      CoordinatorMetrics::Create(metrics_registry_);
  if (!metrics.ok()) return metrics.status();
  metrics_ = *std::move(metrics);

  if (options_.db_path.empty()) {
    spdlog::warn(
        "no --db: jobs and results are kept in memory and lost when the coordinator stops");
    store_ = std::make_unique<InMemoryJobStore>();
  } else {
    SqliteJobStoreOptions db;
    db.path = options_.db_path;
    db.synchronous_full = options_.db_synchronous_full;
    absl::StatusOr<std::unique_ptr<SqliteJobStore>> sqlite = SqliteJobStore::Open(db);
    if (!sqlite.ok()) return sqlite.status();
    store_ = *std::move(sqlite);
  }
  AgentRegistryOptions registry_options;
  registry_options.lease = options_.lease;
  registry_ = std::make_unique<AgentRegistry>(*clock_, registry_options);
  rendezvous_ = std::make_unique<RendezvousStore>(*clock_, options_.rendezvous);
  streams_ = std::make_unique<AgentStreamHub>();
  events_ = std::make_unique<JobEventHub>();
  JobManagerOptions job_options = options_.jobs;
  // A peer's collective failure waits for its cause as long as a dead agent's lease takes to run
  // out, plus two ticks (lease expiry is seen at the next tick, before the job's tick), so the
  // dead agent is always the one named.
  job_options.root_cause_wait = options_.lease + 2 * options_.tick;
  jobs_ = std::make_unique<JobManager>(*clock_, *store_, *registry_, *rendezvous_, *streams_,
                                       *events_, catalog_, job_options, metrics_.get());
  registry_->AddLossListener([this](const AgentLoss& loss) { jobs_->OnAgentLoss(loss); });
  MOECAP_RETURN_IF_ERROR(jobs_->Recover());

  submissions_ = std::make_unique<SubmissionQueue>(*jobs_, options_.submissions);
  job_service_ = std::make_unique<JobServiceImpl>(*jobs_, *submissions_, *registry_, *events_,
                                                  authorizer_.get());
  agent_service_ = std::make_unique<AgentServiceImpl>(*registry_, *jobs_, *streams_,
                                                      options_.version, authorizer_.get());
  rendezvous_service_ =
      std::make_unique<RendezvousServiceImpl>(*rendezvous_, *registry_, authorizer_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen, *credentials, &port_);
  builder.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_send_message_bytes);
  builder.RegisterService(job_service_.get());
  builder.RegisterService(agent_service_.get());
  builder.RegisterService(rendezvous_service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<RpcMetricsInterceptorFactory>(*metrics_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("--listen ", options_.listen,
                                               ": cannot listen there (address in use or "
                                               "invalid)"));
  }
  const size_t colon = options_.listen.rfind(':');
  address_ = absl::StrCat(
      colon == std::string::npos ? options_.listen : options_.listen.substr(0, colon), ":", port_);
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
      health != nullptr) {
    health->SetServingStatus(true);
  }

  metrics_registry_.AddCollector([this] {
    metrics_->SetAgents(registry_->CountByState(), registry_->NamesAndLiveness());
    metrics_->SetJobs(jobs_->Stats());
  });
  if (!options_.metrics_listen.empty()) {
    absl::StatusOr<telemetry::HostPort> hp =
        telemetry::ParseHostPort(options_.metrics_listen, "--metrics-listen");
    if (!hp.ok()) return hp.status();
    telemetry::MetricsServerOptions m;
    m.host = hp->host.empty() ? "0.0.0.0" : hp->host;
    m.port = hp->port;
    m.health = [this]() -> absl::Status {
      return stop_.HasBeenNotified() ? absl::UnavailableError("shutting down") : absl::OkStatus();
    };
    absl::StatusOr<std::unique_ptr<telemetry::MetricsServer>> ms =
        telemetry::MetricsServer::Start(metrics_registry_, std::move(m));
    if (!ms.ok()) return ms.status();
    metrics_server_ = *std::move(ms);
    spdlog::info("metrics on http://{}/metrics", metrics_server_->address());
  }
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
  spdlog::info("coordinator {} listening on {} (lease {}, database {}, {}, {})", options_.version,
               address_, absl::FormatDuration(options_.lease),
               options_.db_path.empty() ? "in memory" : options_.db_path,
               options_.credentials.insecure         ? "plaintext"
               : authorizer_->agent_certs_required() ? "TLS, agents by certificate"
                                                     : "TLS, agents not authenticated",
               authorizer_->tokens_required() ? "moecapctl tokens required" : "no tokens checked");
  return absl::OkStatus();
}

void CoordinatorServer::MaintenanceLoop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.tick)) {
    const absl::Time now = clock_->Now();
    registry_->ExpireLeases(now);
    rendezvous_->ExpireWaiters(now);
    jobs_->Tick();
  }
}

void CoordinatorServer::Shutdown() {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (maintenance_.joinable()) maintenance_.join();
  if (server_ != nullptr) {
    if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
        health != nullptr) {
      health->SetServingStatus(false);
    }
    // Long-lived streams end now; unary calls and rendezvous waits get the grace period.
    if (streams_ != nullptr) {
      streams_->CloseAll(absl::UnavailableError("the coordinator is shutting down"));
    }
    if (events_ != nullptr) {
      events_->EndAll(absl::UnavailableError("the coordinator is shutting down"));
    }
    server_->Shutdown(absl::ToChronoTime(absl::Now() + options_.shutdown_grace));
    server_->Wait();
  }
  // Every SubmitPlan has been answered (Wait returned): the workers have nothing left to do.
  if (submissions_ != nullptr) submissions_->Stop();
  if (metrics_server_ != nullptr) metrics_server_->Stop();
  spdlog::info("coordinator stopped");
}

CoordinatorServer::~CoordinatorServer() { Shutdown(); }

}  // namespace moecap::coordinator
