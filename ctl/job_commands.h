// The cluster commands of moecapctl: submit, watch, status, results, cancel and agents. Each talks
// to the coordinator's JobService (ctl/coordinator_client.h).
#ifndef MOECAP_CTL_JOB_COMMANDS_H_
#define MOECAP_CTL_JOB_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/status.h"
#include "ctl/command.h"
#include "ctl/coordinator_client.h"

namespace moecap::ctl {

// Flags every cluster command takes.
struct ClusterOptions {
  std::string coordinator;  // --coordinator HOST:PORT (default $MOECAP_COORDINATOR)
  double timeout_s = 30;    // per request
  // Security (docs/security.md): --token/--token-file/$MOECAP_TOKEN, --tls-ca/$MOECAP_TLS_CA,
  // --tls-cert, --tls-key, --tls-server-name, --insecure.
  std::string token;
  std::string token_file;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_server_name;
  bool insecure = false;
  ClientOptions ToClientOptions() const;
};

struct SubmitOptions {
  ClusterOptions cluster;
  std::string plan_path;
  bool wait = false;
  bool dry_run = false;
  double wait_timeout_s = 24 * 3600;
  double agents_grace_s = 0;     // see WatchUntilDone
  std::string output = "table";  // of the results printed with --wait
};

struct WatchOptions {
  ClusterOptions cluster;
  std::string job_id;
  double timeout_s = 24 * 3600;
  double agents_grace_s = 0;  // see WatchUntilDone
};

struct StatusOptions {
  ClusterOptions cluster;
  std::string job_id;  // empty: list jobs
  std::string output = "table";
};

struct ResultsOptions {
  ClusterOptions cluster;
  std::string job_id;
  std::string output = "table";
  bool explain = false;
};

struct CancelOptions {
  ClusterOptions cluster;
  std::string job_id;
  std::string reason;
};

struct AgentsOptions {
  ClusterOptions cluster;
  std::string output = "table";
};

CLI::App* RegisterSubmitCommand(CLI::App& app, SubmitOptions& options);
CLI::App* RegisterWatchCommand(CLI::App& app, WatchOptions& options);
CLI::App* RegisterStatusCommand(CLI::App& app, StatusOptions& options);
CLI::App* RegisterResultsCommand(CLI::App& app, ResultsOptions& options);
CLI::App* RegisterCancelCommand(CLI::App& app, CancelOptions& options);
CLI::App* RegisterAgentsCommand(CLI::App& app, AgentsOptions& options);

// submit --wait, results and run --local print the scores of the catalog directories (`global`)
// beside the results.
absl::Status RunSubmitCommand(const SubmitOptions& options, const GlobalOptions& global,
                              const CommandIo& io);
absl::Status RunWatchCommand(const WatchOptions& options, const CommandIo& io);
absl::Status RunStatusCommand(const StatusOptions& options, const CommandIo& io);
absl::Status RunResultsCommand(const ResultsOptions& options, const GlobalOptions& global,
                               const CommandIo& io);
absl::Status RunCancelCommand(const CancelOptions& options, const CommandIo& io);
absl::Status RunAgentsCommand(const AgentsOptions& options, const CommandIo& io);

// Watches a job until it ends, drawing progress on `io.out`; returns the job's final state, or an
// error when the watch itself failed. Shared by `watch`, `submit --wait` and `run --local`.
// A queued job whose verdict says fewer registered agents match than it needs ends the watch
// with an UnplaceableError (exit 3) once `agents_grace` has passed (at once for zero); after
// `timeout` the error says why the job still waits.
absl::StatusOr<v1::JobState> WatchUntilDone(CoordinatorClient& client, const std::string& job_id,
                                            absl::Duration timeout, const CommandIo& io,
                                            absl::Duration agents_grace = absl::ZeroDuration());

// OK for SUCCEEDED; an error carrying the job's failure reason otherwise.
absl::Status FinalStateStatus(CoordinatorClient& client, const std::string& job_id,
                              v1::JobState state);

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_JOB_COMMANDS_H_
