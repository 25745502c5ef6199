// FakeCoordinator: synchronous gRPC services over one mutex-guarded record.
#include "tests/integration/agent/fake_coordinator.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace moecap::testing {
namespace {

// Server-side waits look at cancellation and shutdown this often.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(50);

struct WaitArg {
  const Recorded* recorded;
  const std::function<bool(const Recorded&)>* done;
};
bool EvalWait(WaitArg* arg) { return (*arg->done)(*arg->recorded); }

}  // namespace

class FakeCoordinator::AgentServiceImpl final : public v1::AgentService::Service {
 public:
  explicit AgentServiceImpl(FakeCoordinator& fake) : fake_(fake) {}

  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override {
    absl::MutexLock lock(&fake_.mu_);
    std::string id = request->previous_agent_id();
    if (id.empty()) id = absl::StrCat("agent-", fake_.next_agent_++);
    fake_.recorded_.registrations.push_back(*request);
    fake_.recorded_.agent_by_name[request->agent().name()] = id;
    response->set_agent_id(id);
    response->set_lease_seconds(fake_.options_.lease_seconds);
    response->set_heartbeat_interval_seconds(fake_.options_.heartbeat_interval_seconds);
    response->set_coordinator_version("fake");
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse*) override {
    absl::MutexLock lock(&fake_.mu_);
    if (!Known(request->agent_id())) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown agent");
    }
    fake_.recorded_.last_heartbeat[request->agent_id()] = *request;
    return grpc::Status::OK;
  }

  grpc::Status StreamAssignments(
      grpc::ServerContext* context, const v1::StreamAssignmentsRequest* request,
      grpc::ServerWriter<v1::StreamAssignmentsResponse>* writer) override {
    const std::string id = request->agent_id();
    {
      absl::MutexLock lock(&fake_.mu_);
      if (!Known(id)) return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown agent");
      fake_.recorded_.streaming.insert(id);
    }
    grpc::Status status = grpc::Status::OK;
    while (!context->IsCancelled()) {
      v1::StreamAssignmentsResponse event;
      {
        absl::MutexLock lock(&fake_.mu_);
        auto ready = [this, &id] {
          fake_.mu_.AssertHeld();
          return fake_.shutting_down_ || !fake_.outbox_[id].empty();
        };
        fake_.mu_.AwaitWithTimeout(absl::Condition(&ready), kWaitSlice);
        if (fake_.shutting_down_) {
          status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator shutting down");
          break;
        }
        if (fake_.outbox_[id].empty()) continue;
        event = fake_.outbox_[id].front();
        fake_.outbox_[id].pop_front();
      }
      if (!writer->Write(event)) break;
    }
    absl::MutexLock lock(&fake_.mu_);
    fake_.recorded_.streaming.erase(id);
    return status;
  }

  grpc::Status ReportProgress(grpc::ServerContext*, const v1::ReportProgressRequest* request,
                              v1::ReportProgressResponse*) override {
    absl::MutexLock lock(&fake_.mu_);
    fake_.recorded_.progress.push_back(*request);
    Log(request->agent_id(),
        absl::StrCat("progress ", v1::Progress::Stage_Name(request->progress().stage())));
    return grpc::Status::OK;
  }

  grpc::Status ReportRank(grpc::ServerContext*, const v1::ReportRankRequest* request,
                          v1::ReportRankResponse*) override {
    absl::MutexLock lock(&fake_.mu_);
    fake_.recorded_.ranks.push_back(request->report());
    Log(request->report().agent_id(), absl::StrCat("rank ", request->report().rank()));
    return grpc::Status::OK;
  }

  grpc::Status ReportNode(grpc::ServerContext*, const v1::ReportNodeRequest* request,
                          v1::ReportNodeResponse*) override {
    absl::MutexLock lock(&fake_.mu_);
    fake_.recorded_.nodes.push_back(request->report());
    Log(request->report().agent_id(), "node");
    return grpc::Status::OK;
  }

  grpc::Status ReportFailure(grpc::ServerContext*, const v1::ReportFailureRequest* request,
                             v1::ReportFailureResponse*) override {
    absl::MutexLock lock(&fake_.mu_);
    fake_.recorded_.failures.push_back(*request);
    Log(request->agent_id(), absl::StrCat("failure ", v1::FailureKind_Name(request->kind())));
    return grpc::Status::OK;
  }

  grpc::Status Deregister(grpc::ServerContext*, const v1::DeregisterRequest* request,
                          v1::DeregisterResponse*) override {
    absl::MutexLock lock(&fake_.mu_);
    fake_.recorded_.deregistrations.push_back(*request);
    Log(request->agent_id(), "deregister");
    return grpc::Status::OK;
  }

 private:
  bool Known(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(fake_.mu_) {
    for (const auto& [name, known] : fake_.recorded_.agent_by_name) {
      if (known == id) return true;
    }
    return false;
  }
  void Log(const std::string& id, const std::string& what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(fake_.mu_) {
    fake_.recorded_.log.push_back(absl::StrCat(id, " ", what));
  }

  FakeCoordinator& fake_;
};

class FakeCoordinator::RendezvousServiceImpl final : public v1::RendezvousService::Service {
 public:
  explicit RendezvousServiceImpl(FakeCoordinator& fake) : fake_(fake) {}

  grpc::Status Set(grpc::ServerContext*, const v1::RendezvousSetRequest* request,
                   v1::RendezvousSetResponse*) override {
    absl::MutexLock lock(&fake_.mu_);
    if (fake_.deleted_scopes_.count(request->scope()) > 0) return Gone(request->scope());
    fake_.store_[request->scope()][request->key()] = request->value();
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext* context, const v1::RendezvousGetRequest* request,
                   v1::RendezvousGetResponse* response) override {
    std::vector<std::string> keys = {request->key()};
    grpc::Status status = AwaitKeys(context, request->scope(), keys, request->wait_seconds());
    if (!status.ok()) {
      return request->wait_seconds() > 0 ||
                     status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED
                 ? status
                 : grpc::Status::OK;  // no wait asked: found = false
    }
    absl::MutexLock lock(&fake_.mu_);
    response->set_found(true);
    response->set_value(fake_.store_[request->scope()][request->key()]);
    return grpc::Status::OK;
  }

  grpc::Status Wait(grpc::ServerContext* context, const v1::RendezvousWaitRequest* request,
                    v1::RendezvousWaitResponse*) override {
    if (!(request->timeout_seconds() > 0)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "timeout_seconds must be > 0");
    }
    std::vector<std::string> keys(request->keys().begin(), request->keys().end());
    return AwaitKeys(context, request->scope(), keys, request->timeout_seconds());
  }

  grpc::Status Add(grpc::ServerContext*, const v1::RendezvousAddRequest* request,
                   v1::RendezvousAddResponse* response) override {
    absl::MutexLock lock(&fake_.mu_);
    if (fake_.deleted_scopes_.count(request->scope()) > 0) return Gone(request->scope());
    std::string& value = fake_.store_[request->scope()][request->key()];
    int64_t current = 0;
    if (!value.empty() && !absl::SimpleAtoi(value, &current)) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "not a counter");
    }
    current += request->delta();
    value = absl::StrCat(current);
    response->set_value(current);
    return grpc::Status::OK;
  }

  grpc::Status DeleteScope(grpc::ServerContext*, const v1::RendezvousDeleteScopeRequest* request,
                           v1::RendezvousDeleteScopeResponse* response) override {
    absl::MutexLock lock(&fake_.mu_);
    response->set_deleted_keys(static_cast<int64_t>(fake_.store_[request->scope()].size()));
    fake_.store_.erase(request->scope());
    fake_.deleted_scopes_.insert(request->scope());
    return grpc::Status::OK;
  }

 private:
  static grpc::Status Gone(const std::string& scope) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("scope '", scope, "' is gone"));
  }

  // Waits (in slices, so cancellation and shutdown end it) until every key is set.
  grpc::Status AwaitKeys(grpc::ServerContext* context, const std::string& scope,
                         const std::vector<std::string>& keys, double wait_seconds) {
    const absl::Time deadline = absl::Now() + absl::Seconds(std::max(0.0, wait_seconds));
    absl::MutexLock lock(&fake_.mu_);
    while (true) {
      if (fake_.deleted_scopes_.count(scope) > 0) return Gone(scope);
      std::vector<std::string> missing;
      for (const std::string& key : keys) {
        if (fake_.store_[scope].count(key) == 0) missing.push_back(key);
      }
      if (missing.empty()) return grpc::Status::OK;
      if (fake_.shutting_down_ || context->IsCancelled()) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "coordinator shutting down");
      }
      const absl::Time now = absl::Now();
      if (now >= deadline) {
        return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                            absl::StrCat("missing keys: ", absl::StrJoin(missing, ", ")));
      }
      auto changed = [&] {
        fake_.mu_.AssertHeld();
        if (fake_.shutting_down_ || fake_.deleted_scopes_.count(scope) > 0) return true;
        for (const std::string& key : keys) {
          if (fake_.store_[scope].count(key) == 0) return false;
        }
        return true;
      };
      ++fake_.recorded_.rendezvous_waiting;
      fake_.mu_.AwaitWithTimeout(absl::Condition(&changed), std::min(kWaitSlice, deadline - now));
      --fake_.recorded_.rendezvous_waiting;
    }
  }

  FakeCoordinator& fake_;
};

absl::StatusOr<std::unique_ptr<FakeCoordinator>> FakeCoordinator::Start(
    FakeCoordinatorOptions options) {
  std::unique_ptr<FakeCoordinator> fake(new FakeCoordinator());
  fake->options_ = options;
  fake->agent_service_ = std::make_unique<AgentServiceImpl>(*fake);
  fake->rendezvous_service_ = std::make_unique<RendezvousServiceImpl>(*fake);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", options.port),
                           grpc::InsecureServerCredentials(), &fake->port_);
  builder.RegisterService(fake->agent_service_.get());
  builder.RegisterService(fake->rendezvous_service_.get());
  fake->server_ = builder.BuildAndStart();
  if (fake->server_ == nullptr || fake->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("fake coordinator: cannot listen on 127.0.0.1:", options.port));
  }
  return fake;
}

FakeCoordinator::~FakeCoordinator() { Shutdown(); }

void FakeCoordinator::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
  }
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_->Wait();
  }
}

std::string FakeCoordinator::address() const { return absl::StrCat("127.0.0.1:", port_); }

void FakeCoordinator::Send(const std::string& agent_id, v1::StreamAssignmentsResponse event) {
  absl::MutexLock lock(&mu_);
  outbox_[agent_id].push_back(std::move(event));
}

bool FakeCoordinator::WaitFor(const std::function<bool(const Recorded&)>& done,
                              absl::Duration timeout) {
  WaitArg arg{&recorded_, &done};
  const bool held = mu_.LockWhenWithTimeout(absl::Condition(&EvalWait, &arg), timeout);
  mu_.Unlock();
  return held;
}

Recorded FakeCoordinator::Snapshot() {
  absl::MutexLock lock(&mu_);
  return recorded_;
}

}  // namespace moecap::testing
