// The gRPC implementation of CoordinatorClient.
#include "agent/daemon/coordinator_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agent/comm/grpc_kv_store.h"
#include "common/status_macros.h"

namespace moecap::agentd {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot read it"));
  std::stringstream text;
  text << in.rdbuf();
  if (!absl::StrContains(text.str(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": not a PEM file"));
  }
  return text.str();
}

class GrpcAssignmentStream : public AssignmentStream {
 public:
  GrpcAssignmentStream(v1::AgentService::Stub& stub, const std::string& agent_id) {
    request_.set_agent_id(agent_id);
    reader_ = stub.StreamAssignments(&context_, request_);
  }

  bool Read(v1::StreamAssignmentsResponse* event) override { return reader_->Read(event); }
  void Cancel() override { context_.TryCancel(); }
  absl::Status Finish() override { return FromGrpcStatus("assignment stream", reader_->Finish()); }

 private:
  grpc::ClientContext context_;
  v1::StreamAssignmentsRequest request_;
  std::unique_ptr<grpc::ClientReader<v1::StreamAssignmentsResponse>> reader_;
};

class GrpcCoordinatorClient : public CoordinatorClient {
 public:
  GrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel, absl::Duration rpc_timeout)
      : stub_(v1::AgentService::NewStub(std::move(channel))), rpc_timeout_(rpc_timeout) {}

  absl::StatusOr<v1::RegisterResponse> Register(const v1::RegisterRequest& request) override {
    return Unary<v1::RegisterResponse>("Register", request, &v1::AgentService::Stub::Register);
  }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request) override {
    return Unary<v1::HeartbeatResponse>("Heartbeat", request, &v1::AgentService::Stub::Heartbeat);
  }
  std::unique_ptr<AssignmentStream> StreamAssignments(const std::string& agent_id) override {
    return std::make_unique<GrpcAssignmentStream>(*stub_, agent_id);
  }
  absl::StatusOr<v1::ReportProgressResponse> ReportProgress(
      const v1::ReportProgressRequest& request) override {
    return Unary<v1::ReportProgressResponse>("ReportProgress", request,
                                             &v1::AgentService::Stub::ReportProgress);
  }
  absl::Status ReportRank(const v1::ReportRankRequest& request) override {
    return Unary<v1::ReportRankResponse>("ReportRank", request, &v1::AgentService::Stub::ReportRank)
        .status();
  }
  absl::Status ReportNode(const v1::ReportNodeRequest& request) override {
    return Unary<v1::ReportNodeResponse>("ReportNode", request, &v1::AgentService::Stub::ReportNode)
        .status();
  }
  absl::Status ReportFailure(const v1::ReportFailureRequest& request) override {
    return Unary<v1::ReportFailureResponse>("ReportFailure", request,
                                            &v1::AgentService::Stub::ReportFailure)
        .status();
  }
  absl::Status Deregister(const v1::DeregisterRequest& request) override {
    return Unary<v1::DeregisterResponse>("Deregister", request, &v1::AgentService::Stub::Deregister)
        .status();
  }

 private:
  template <typename Response, typename Request, typename Method>
  absl::StatusOr<Response> Unary(absl::string_view name, const Request& request, Method method) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout_));
    Response response;
    const grpc::Status status = ((*stub_).*method)(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(absl::StrCat("coordinator ", name), status);
    return response;
  }

  std::unique_ptr<v1::AgentService::Stub> stub_;
  absl::Duration rpc_timeout_;
};

}  // namespace

absl::Status ValidateSecurity(const CoordinatorSecurity& security) {
  const bool any_tls =
      !security.ca_file.empty() || !security.cert_file.empty() || !security.key_file.empty();
  if (security.insecure && any_tls) {
    return absl::InvalidArgumentError(
        "--insecure and --tls-ca/--tls-cert/--tls-key exclude each other: pass one of them");
  }
  if (!security.insecure && !any_tls) {
    return absl::InvalidArgumentError(
        "no transport security chosen: pass --tls-ca FILE --tls-cert FILE --tls-key FILE (mTLS; "
        "the certificate names this agent) or --insecure (plaintext, for a coordinator started "
        "with --insecure)");
  }
  if (any_tls && security.ca_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-ca: required with --tls-cert/--tls-key (the CA that signed the coordinator)");
  }
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key: give both (this agent's certificate and its key); a "
        "coordinator started with --tls-ca refuses agents without them");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeCoordinatorChannel(
    const std::string& target, absl::Duration max_reconnect, const CoordinatorSecurity& security) {
  MOECAP_RETURN_IF_ERROR(ValidateSecurity(security));
  grpc::ChannelArguments args;
  // Pings find a silently dead connection (a network cut); a killed coordinator closes its
  // sockets and is noticed at once. Not more often: servers answer frequent pings on idle
  // connections with GOAWAY (too_many_pings). Heartbeat failures beyond the lease also reconnect.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  // gRPC takes its minimum connect timeout from this argument: one attempt (TCP connect and the
  // TLS handshake) gets this long. 100 ms timed TLS handshakes out on a loaded host; a refused
  // connection (coordinator down) still fails at once, and retries start after 100 ms.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 5000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(max_reconnect)));
  if (security.insecure) {
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadPem(security.ca_file, "--tls-ca");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *std::move(ca);
  if (!security.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(security.cert_file, "--tls-cert");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(security.key_file, "--tls-key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *std::move(cert);
    ssl.pem_private_key = *std::move(key);
  }
  if (!security.server_name.empty()) args.SetSslTargetNameOverride(security.server_name);
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
}

std::unique_ptr<CoordinatorClient> MakeGrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel,
                                                             absl::Duration rpc_timeout) {
  return std::make_unique<GrpcCoordinatorClient>(std::move(channel), rpc_timeout);
}

}  // namespace moecap::agentd
