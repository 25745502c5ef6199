// moecapctl's connection to the coordinator's JobService: the address (--coordinator or
// $MOECAP_COORDINATOR), transport security and bearer token (docs/security.md), deadlines, and
// gRPC errors turned into absl::Status messages that say which coordinator was asked and what it
// answered.
#ifndef MOECAP_CTL_COORDINATOR_CLIENT_H_
#define MOECAP_CTL_COORDINATOR_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "moecap/v1/job_service.grpc.pb.h"

namespace moecap::ctl {

inline constexpr char kDefaultCoordinator[] = "127.0.0.1:50051";

struct ClientOptions {
  std::string address;  // HOST:PORT; empty: $MOECAP_COORDINATOR, else kDefaultCoordinator
  absl::Duration timeout = absl::Seconds(30);  // per unary call
  // Transport: TLS when tls_ca_file is set (also $MOECAP_TLS_CA), verifying the server against
  // it; plaintext otherwise. tls_cert_file/tls_key_file: an optional client certificate.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_server_name;  // the name to expect in the server certificate (default: host)
  bool insecure = false;        // plaintext, and allows sending a token to a non-local address
  // Bearer token (a tokens file entry on the coordinator): token, else the first line of
  // token_file, else $MOECAP_TOKEN; none: no authorization metadata.
  std::string token;
  std::string token_file;
};

// The token a client with these options sends ("" for none); InvalidArgument when the token file
// cannot be read or is empty.
absl::StatusOr<std::string> ResolveToken(const ClientOptions& options);

// Whether `address` (HOST:PORT, unix:...) is on this host: plaintext there exposes nothing.
bool IsLocalAddress(const std::string& address);

// The address a client with these options connects to.
std::string ResolveCoordinatorAddress(const ClientOptions& options);

// gRPC status -> absl::Status, with the coordinator's address in the message when it could not
// be reached ("cannot reach the coordinator at 127.0.0.1:50051: ...").
absl::Status FromGrpc(const grpc::Status& status, const std::string& address);

class CoordinatorClient {
 public:
  explicit CoordinatorClient(ClientOptions options);

  const std::string& address() const { return address_; }
  // Why the client cannot make calls (unreadable credential files, a token refused to be sent
  // in plaintext); every call returns it.
  const absl::Status& setup_status() const { return setup_; }

  absl::StatusOr<v1::SubmitPlanResponse> SubmitPlan(const v1::SubmitPlanRequest& request);
  absl::StatusOr<v1::GetJobResponse> GetJob(const v1::GetJobRequest& request);
  absl::StatusOr<v1::ListJobsResponse> ListJobs(const v1::ListJobsRequest& request);
  absl::StatusOr<v1::CancelJobResponse> CancelJob(const v1::CancelJobRequest& request);
  absl::StatusOr<v1::GetResultsResponse> GetResults(const v1::GetResultsRequest& request);
  absl::StatusOr<v1::ListAgentsResponse> ListAgents(const v1::ListAgentsRequest& request);

  // Streams WatchJob events to `on_event` until the stream ends (the job reached a terminal
  // state) or `on_event` returns false. `deadline` bounds the whole watch.
  absl::Status WatchJob(const v1::WatchJobRequest& request, absl::Duration deadline,
                        const std::function<bool(const v1::WatchJobResponse&)>& on_event);

 private:
  void Prepare(grpc::ClientContext& context) const;

  ClientOptions options_;
  std::string address_;
  absl::Status setup_;
  std::string token_;
  std::unique_ptr<v1::JobService::Stub> stub_;
};

}  // namespace moecap::ctl

#endif  // MOECAP_CTL_COORDINATOR_CLIENT_H_
