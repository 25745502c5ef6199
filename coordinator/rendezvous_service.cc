// RendezvousService: thin gRPC layer over the RendezvousStore.
#include "coordinator/rendezvous_service.h"

#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "coordinator/proto_util.h"

namespace moecap::coordinator {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A waiting call: finished by the store's callback (exactly once), cancelled with the RPC.
class WaitingCall final : public grpc::ServerUnaryReactor {
 public:
  WaitingCall(RendezvousStore& store, RendezvousStore::WaiterId id) : store_(store), id_(id) {}
  void OnCancel() override { store_.Cancel(id_); }  // completes the waiter, hence Finish
  void OnDone() override { delete this; }

 private:
  RendezvousStore& store_;
  const RendezvousStore::WaiterId id_;
};

absl::StatusOr<absl::Duration> Seconds(double s, absl::string_view field) {
  if (!std::isfinite(s) || s < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("field '", field, "': must be a finite number >= 0, got ", s));
  }
  return absl::Seconds(s);
}

absl::Status Caller(const grpc::CallbackServerContext& context, const Authorizer& auth,
                    const AgentRegistry& registry, const std::string& agent_id,
                    const std::string& scope) {
  if (agent_id.empty()) return absl::InvalidArgumentError("field 'agent_id': empty");
  if (scope.empty()) return absl::InvalidArgumentError("field 'scope': empty");
  MOECAP_RETURN_IF_ERROR(auth.CheckAgentId(context, agent_id, registry));
  return registry.CheckLive(agent_id);
}

}  // namespace

grpc::ServerUnaryReactor* RendezvousServiceImpl::Set(grpc::CallbackServerContext* context,
                                                     const v1::RendezvousSetRequest* request,
                                                     v1::RendezvousSetResponse* /*response*/) {
  if (absl::Status s = Caller(*context, auth_, registry_, request->agent_id(), request->scope());
      !s.ok()) {
    return Done(context, s);
  }
  return Done(context,
              store_.Set(request->agent_id(), request->scope(), request->key(), request->value()));
}

grpc::ServerUnaryReactor* RendezvousServiceImpl::Get(grpc::CallbackServerContext* context,
                                                     const v1::RendezvousGetRequest* request,
                                                     v1::RendezvousGetResponse* response) {
  if (absl::Status s = Caller(*context, auth_, registry_, request->agent_id(), request->scope());
      !s.ok()) {
    return Done(context, s);
  }
  absl::StatusOr<absl::Duration> wait = Seconds(request->wait_seconds(), "wait_seconds");
  if (!wait.ok()) return Done(context, wait.status());
  const RendezvousStore::WaiterId id = store_.NewWaiterId();
  auto* call = new WaitingCall(store_, id);
  store_.Get(id, request->agent_id(), request->scope(), request->key(), *wait,
             [call, response](absl::Status status, std::optional<std::string> value) {
               if (status.ok()) {
                 response->set_found(value.has_value());
                 if (value.has_value()) response->set_value(*std::move(value));
               }
               call->Finish(ToGrpcStatus(status));
             });
  return call;
}

grpc::ServerUnaryReactor* RendezvousServiceImpl::Wait(grpc::CallbackServerContext* context,
                                                      const v1::RendezvousWaitRequest* request,
                                                      v1::RendezvousWaitResponse* /*response*/) {
  if (absl::Status s = Caller(*context, auth_, registry_, request->agent_id(), request->scope());
      !s.ok()) {
    return Done(context, s);
  }
  absl::StatusOr<absl::Duration> timeout = Seconds(request->timeout_seconds(), "timeout_seconds");
  if (!timeout.ok()) return Done(context, timeout.status());
  const RendezvousStore::WaiterId id = store_.NewWaiterId();
  auto* call = new WaitingCall(store_, id);
  store_.Wait(id, request->agent_id(), request->scope(),
              std::vector<std::string>(request->keys().begin(), request->keys().end()), *timeout,
              [call](absl::Status status, std::optional<std::string> /*value*/) {
                call->Finish(ToGrpcStatus(status));
              });
  return call;
}

grpc::ServerUnaryReactor* RendezvousServiceImpl::Add(grpc::CallbackServerContext* context,
                                                     const v1::RendezvousAddRequest* request,
                                                     v1::RendezvousAddResponse* response) {
  if (absl::Status s = Caller(*context, auth_, registry_, request->agent_id(), request->scope());
      !s.ok()) {
    return Done(context, s);
  }
  absl::StatusOr<int64_t> value =
      store_.Add(request->agent_id(), request->scope(), request->key(), request->delta());
  if (value.ok()) response->set_value(*value);
  return Done(context, value.status());
}

grpc::ServerUnaryReactor* RendezvousServiceImpl::DeleteScope(
    grpc::CallbackServerContext* context, const v1::RendezvousDeleteScopeRequest* request,
    v1::RendezvousDeleteScopeResponse* response) {
  // Only agents of the scope's attempt may delete it over the API; the coordinator deletes
  // scopes itself when attempts end.
  if (absl::Status s = Caller(*context, auth_, registry_, request->agent_id(), request->scope());
      !s.ok()) {
    return Done(context, s);
  }
  absl::StatusOr<int64_t> deleted =
      store_.DeleteScopeAsAgent(request->agent_id(), request->scope());
  if (deleted.ok()) response->set_deleted_keys(*deleted);
  return Done(context, deleted.status());
}

}  // namespace moecap::coordinator
