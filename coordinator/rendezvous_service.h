// moecap.v1.RendezvousService on gRPC's callback API, over the RendezvousStore. Get-with-wait and
// Wait hold no thread: their reactor is completed by the store (key set, timeout, scope deleted)
// or cancelled with the call.
#ifndef MOECAP_COORDINATOR_RENDEZVOUS_SERVICE_H_
#define MOECAP_COORDINATOR_RENDEZVOUS_SERVICE_H_

#include "coordinator/agent_registry.h"
#include "coordinator/auth.h"
#include "coordinator/rendezvous_store.h"
#include "moecap/v1/rendezvous_service.grpc.pb.h"

namespace moecap::coordinator {

class RendezvousServiceImpl final : public v1::RendezvousService::CallbackService {
 public:
  // `auth` (kept; null: no checks): with mTLS the rank workers present their agent's
  // certificate, which must name the agent of `agent_id`.
  RendezvousServiceImpl(RendezvousStore& store, const AgentRegistry& registry,
                        const Authorizer* auth = nullptr)
      : store_(store), registry_(registry), auth_(auth != nullptr ? *auth : none_) {}

  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* context,
                                const v1::RendezvousSetRequest* request,
                                v1::RendezvousSetResponse* response) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const v1::RendezvousGetRequest* request,
                                v1::RendezvousGetResponse* response) override;
  grpc::ServerUnaryReactor* Wait(grpc::CallbackServerContext* context,
                                 const v1::RendezvousWaitRequest* request,
                                 v1::RendezvousWaitResponse* response) override;
  grpc::ServerUnaryReactor* Add(grpc::CallbackServerContext* context,
                                const v1::RendezvousAddRequest* request,
                                v1::RendezvousAddResponse* response) override;
  grpc::ServerUnaryReactor* DeleteScope(grpc::CallbackServerContext* context,
                                        const v1::RendezvousDeleteScopeRequest* request,
                                        v1::RendezvousDeleteScopeResponse* response) override;

 private:
  RendezvousStore& store_;
  const AgentRegistry& registry_;
  const Authorizer none_;
  const Authorizer& auth_;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_RENDEZVOUS_SERVICE_H_
