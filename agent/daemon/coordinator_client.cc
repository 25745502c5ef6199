// The gRPC implementation of CoordinatorClient.
#include "agent/daemon/coordinator_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agent/comm/grpc_kv_store.h"

namespace moecap::agentd {
namespace {

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

std::shared_ptr<grpc::Channel> MakeCoordinatorChannel(const std::string& target,
                                                      absl::Duration max_reconnect) {
  grpc::ChannelArguments args;
  // Pings find a silently dead connection (a network cut); a killed coordinator closes its
  // sockets and is noticed at once. Not more often: servers answer frequent pings on idle
  // connections with GOAWAY (too_many_pings). Heartbeat failures beyond the lease also reconnect.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(max_reconnect)));
  // TODO(issue 7): TLS credentials (--tls-cert/--tls-key/--tls-ca) replace these.
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<CoordinatorClient> MakeGrpcCoordinatorClient(std::shared_ptr<grpc::Channel> channel,
                                                             absl::Duration rpc_timeout) {
  return std::make_unique<GrpcCoordinatorClient>(std::move(channel), rpc_timeout);
}

}  // namespace moecap::agentd
