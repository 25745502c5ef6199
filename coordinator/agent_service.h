// moecap.v1.AgentService on gRPC's callback API: decodes each call, hands it to the AgentRegistry
// or the JobManager, encodes the answer. StreamAssignments is a QueuedWriter attached to the
// AgentStreamHub for as long as the agent keeps it open.
#ifndef MOECAP_COORDINATOR_AGENT_SERVICE_H_
#define MOECAP_COORDINATOR_AGENT_SERVICE_H_

#include <string>

#include "coordinator/agent_registry.h"
#include "coordinator/agent_stream_hub.h"
#include "coordinator/auth.h"
#include "coordinator/job_manager.h"
#include "moecap/v1/agent_service.grpc.pb.h"

namespace moecap::coordinator {

class AgentServiceImpl final : public v1::AgentService::CallbackService {
 public:
  // `auth` (kept; null: no checks): with mTLS every call needs a verified client certificate
  // naming the agent it registers as or acts for.
  AgentServiceImpl(AgentRegistry& registry, JobManager& jobs, AgentStreamHub& streams,
                   std::string coordinator_version, const Authorizer* auth = nullptr)
      : registry_(registry),
        jobs_(jobs),
        streams_(streams),
        version_(std::move(coordinator_version)),
        auth_(auth != nullptr ? *auth : none_) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* context,
                                     const v1::RegisterRequest* request,
                                     v1::RegisterResponse* response) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context,
                                      const v1::HeartbeatRequest* request,
                                      v1::HeartbeatResponse* response) override;
  grpc::ServerWriteReactor<v1::StreamAssignmentsResponse>* StreamAssignments(
      grpc::CallbackServerContext* context, const v1::StreamAssignmentsRequest* request) override;
  grpc::ServerUnaryReactor* ReportProgress(grpc::CallbackServerContext* context,
                                           const v1::ReportProgressRequest* request,
                                           v1::ReportProgressResponse* response) override;
  grpc::ServerUnaryReactor* ReportRank(grpc::CallbackServerContext* context,
                                       const v1::ReportRankRequest* request,
                                       v1::ReportRankResponse* response) override;
  grpc::ServerUnaryReactor* ReportNode(grpc::CallbackServerContext* context,
                                       const v1::ReportNodeRequest* request,
                                       v1::ReportNodeResponse* response) override;
  grpc::ServerUnaryReactor* ReportFailure(grpc::CallbackServerContext* context,
                                          const v1::ReportFailureRequest* request,
                                          v1::ReportFailureResponse* response) override;
  grpc::ServerUnaryReactor* Deregister(grpc::CallbackServerContext* context,
                                       const v1::DeregisterRequest* request,
                                       v1::DeregisterResponse* response) override;

 private:
  AgentRegistry& registry_;
  JobManager& jobs_;
  AgentStreamHub& streams_;
  const std::string version_;
  const Authorizer none_;
  const Authorizer& auth_;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_AGENT_SERVICE_H_
