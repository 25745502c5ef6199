// AgentService: thin gRPC layer over the AgentRegistry and the JobManager.
#include "coordinator/agent_service.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "coordinator/proto_util.h"
#include "coordinator/queued_writer.h"

namespace moecap::coordinator {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

absl::Status NeedAgentId(const std::string& id, absl::string_view field = "agent_id") {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat("field '", field, "': empty"));
  return absl::OkStatus();
}

// The agent's assignment stream: a QueuedWriter the hub delivers to. When it ends while still
// the agent's stream (the agent went away, not a newer stream), the JobManager is told at once.
class AssignmentStream final : public QueuedWriter<v1::StreamAssignmentsResponse>,
                               public AgentStreamHub::Sink {
 public:
  AssignmentStream(AgentStreamHub& hub, JobManager& jobs, std::string agent_id)
      : QueuedWriter(/*max_queue=*/4096), hub_(hub), jobs_(jobs), agent_id_(std::move(agent_id)) {}

  void Deliver(const v1::StreamAssignmentsResponse& message) override { Enqueue(message); }
  void Close(const absl::Status& status) override {
    FinishAfterQueue(ToGrpcStatus(status), /*drain=*/false);
  }

 private:
  void OnStreamDone() override {
    if (hub_.Detach(agent_id_, this)) jobs_.OnStreamClosed(agent_id_);
  }

  AgentStreamHub& hub_;
  JobManager& jobs_;
  const std::string agent_id_;
};

}  // namespace

grpc::ServerUnaryReactor* AgentServiceImpl::Register(grpc::CallbackServerContext* context,
                                                     const v1::RegisterRequest* request,
                                                     v1::RegisterResponse* response) {
  if (absl::Status s = auth_.CheckAgentName(*context, request->agent().name()); !s.ok()) {
    return Done(context, s);
  }
  absl::StatusOr<Registration> reg =
      registry_.Register(request->agent(), request->previous_agent_id(), context->peer());
  if (!reg.ok()) return Done(context, reg.status());
  jobs_.OnAgentRegistered(reg->agent_id);
  response->set_agent_id(reg->agent_id);
  response->set_lease_seconds(absl::ToDoubleSeconds(reg->lease));
  *response->mutable_lease_deadline() = ToProtoTime(reg->lease_deadline);
  response->set_heartbeat_interval_seconds(absl::ToDoubleSeconds(reg->heartbeat_interval));
  response->set_coordinator_version(version_);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AgentServiceImpl::Heartbeat(grpc::CallbackServerContext* context,
                                                      const v1::HeartbeatRequest* request,
                                                      v1::HeartbeatResponse* response) {
  if (absl::Status s = NeedAgentId(request->agent_id()); !s.ok()) return Done(context, s);
  if (absl::Status s = auth_.CheckAgentId(*context, request->agent_id(), registry_); !s.ok()) {
    return Done(context, s);
  }
  absl::StatusOr<absl::Time> deadline =
      registry_.Heartbeat(request->agent_id(), request->state(), request->usage());
  if (!deadline.ok()) return Done(context, deadline.status());
  *response->mutable_lease_deadline() = ToProtoTime(*deadline);
  for (v1::AgentCommand& c : jobs_.OnHeartbeat(*request)) *response->add_commands() = std::move(c);
  return Done(context, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::StreamAssignmentsResponse>* AgentServiceImpl::StreamAssignments(
    grpc::CallbackServerContext* context, const v1::StreamAssignmentsRequest* request) {
  auto stream = std::make_shared<AssignmentStream>(streams_, jobs_, request->agent_id());
  stream->Own(stream);
  absl::Status live = NeedAgentId(request->agent_id());
  if (live.ok()) live = auth_.CheckAgentId(*context, request->agent_id(), registry_);
  if (live.ok()) live = registry_.CheckLive(request->agent_id());
  if (!live.ok()) {
    stream->FinishAfterQueue(ToGrpcStatus(live), /*drain=*/false);
    return stream.get();
  }
  streams_.Attach(request->agent_id(), stream);
  jobs_.OnStreamOpened(request->agent_id());
  return stream.get();
}

grpc::ServerUnaryReactor* AgentServiceImpl::ReportProgress(grpc::CallbackServerContext* context,
                                                           const v1::ReportProgressRequest* request,
                                                           v1::ReportProgressResponse* response) {
  if (absl::Status s = NeedAgentId(request->agent_id()); !s.ok()) return Done(context, s);
  if (absl::Status s = auth_.CheckAgentId(*context, request->agent_id(), registry_); !s.ok()) {
    return Done(context, s);
  }
  absl::StatusOr<bool> cancelled = jobs_.ReportProgress(*request);
  if (!cancelled.ok()) return Done(context, cancelled.status());
  response->set_cancelled(*cancelled);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* AgentServiceImpl::ReportRank(grpc::CallbackServerContext* context,
                                                       const v1::ReportRankRequest* request,
                                                       v1::ReportRankResponse* /*response*/) {
  if (absl::Status s = NeedAgentId(request->report().agent_id(), "report.agent_id"); !s.ok()) {
    return Done(context, s);
  }
  if (absl::Status s = auth_.CheckAgentId(*context, request->report().agent_id(), registry_);
      !s.ok()) {
    return Done(context, s);
  }
  return Done(context, jobs_.ReportRank(request->report()));
}

grpc::ServerUnaryReactor* AgentServiceImpl::ReportNode(grpc::CallbackServerContext* context,
                                                       const v1::ReportNodeRequest* request,
                                                       v1::ReportNodeResponse* /*response*/) {
  if (absl::Status s = NeedAgentId(request->report().agent_id(), "report.agent_id"); !s.ok()) {
    return Done(context, s);
  }
  if (absl::Status s = auth_.CheckAgentId(*context, request->report().agent_id(), registry_);
      !s.ok()) {
    return Done(context, s);
  }
  return Done(context, jobs_.ReportNode(request->report()));
}

grpc::ServerUnaryReactor* AgentServiceImpl::ReportFailure(grpc::CallbackServerContext* context,
                                                          const v1::ReportFailureRequest* request,
                                                          v1::ReportFailureResponse* /*response*/) {
  if (absl::Status s = NeedAgentId(request->agent_id()); !s.ok()) return Done(context, s);
  if (absl::Status s = auth_.CheckAgentId(*context, request->agent_id(), registry_); !s.ok()) {
    return Done(context, s);
  }
  return Done(context, jobs_.ReportFailure(*request));
}

grpc::ServerUnaryReactor* AgentServiceImpl::Deregister(grpc::CallbackServerContext* context,
                                                       const v1::DeregisterRequest* request,
                                                       v1::DeregisterResponse* /*response*/) {
  if (absl::Status s = NeedAgentId(request->agent_id()); !s.ok()) return Done(context, s);
  if (absl::Status s = auth_.CheckAgentId(*context, request->agent_id(), registry_); !s.ok()) {
    return Done(context, s);
  }
  absl::Status s = registry_.Deregister(request->agent_id(), request->reason());
  if (s.ok()) streams_.Reset(request->agent_id());
  return Done(context, s);
}

}  // namespace moecap::coordinator
