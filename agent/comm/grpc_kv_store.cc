// GrpcKvStore: KvStore calls as RendezvousService RPCs, with bounded retries on UNAVAILABLE.
#include "agent/comm/grpc_kv_store.h"

#include <grpc/support/time.h>
#include <grpcpp/client_context.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace moecap {
namespace {

// The server ends a wait itself at the requested time; the RPC deadline leaves it this much more,
// so a "missing keys" answer (which names them) wins over a bare client-side timeout.
constexpr absl::Duration kServerWaitGrace = absl::Seconds(5);

// An RPC's deadline `timeout` from now, as a span gRPC adds to its own clock when the call starts:
// the store's clock may be a test's, but the transport always runs on real time.
void SetTimeout(grpc::ClientContext& context, absl::Duration timeout) {
  context.set_deadline(gpr_time_from_micros(
      absl::ToInt64Microseconds(std::max(timeout, absl::ZeroDuration())), GPR_TIMESPAN));
}

}  // namespace

absl::Status FromGrpcStatus(absl::string_view context, const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(context, ": ", status.error_message()));
}

GrpcKvStore::GrpcKvStore(std::shared_ptr<grpc::Channel> channel, GrpcKvStoreOptions options,
                         const Clock& clock)
    : stub_(v1::RendezvousService::NewStub(std::move(channel))),
      options_(std::move(options)),
      clock_(clock) {}

template <typename Call>
absl::Status GrpcKvStore::CallWithRetry(absl::string_view what, absl::Time deadline, Call&& call) {
  absl::Duration pause = options_.retry_interval;
  while (true) {
    const grpc::Status status = call(deadline);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return FromGrpcStatus(absl::StrCat("rendezvous ", what, " in scope '", options_.scope, "'"),
                            status);
    }
    const absl::Time now = clock_.Now();
    if (now + pause >= deadline) {
      return absl::UnavailableError(
          absl::StrCat("rendezvous ", what, " in scope '", options_.scope,
                       "': the coordinator stayed unavailable: ", status.error_message()));
    }
    clock_.SleepUntil(now + pause);
    pause = std::min(pause * 2, absl::Seconds(1));
  }
}

absl::Status GrpcKvStore::Set(absl::string_view key, absl::string_view value) {
  v1::RendezvousSetRequest request;
  request.set_agent_id(options_.agent_id);
  request.set_scope(options_.scope);
  request.set_key(std::string(key));
  request.set_value(std::string(value));
  return CallWithRetry(absl::StrCat("set of '", key, "'"), clock_.Now() + options_.call_timeout,
                       [&](absl::Time deadline) {
                         grpc::ClientContext context;
                         SetTimeout(context, deadline - clock_.Now());
                         v1::RendezvousSetResponse response;
                         return stub_->Set(&context, request, &response);
                       });
}

absl::StatusOr<std::string> GrpcKvStore::Get(absl::string_view key, absl::Duration timeout) {
  const absl::Time wait_until = clock_.Now() + timeout;
  v1::RendezvousGetRequest request;
  request.set_agent_id(options_.agent_id);
  request.set_scope(options_.scope);
  request.set_key(std::string(key));
  v1::RendezvousGetResponse response;
  absl::Status status =
      CallWithRetry(absl::StrCat("get of '", key, "'"), wait_until, [&](absl::Time deadline) {
        // Each try waits on the server for what is left of the caller's timeout (at least 1 ms:
        // wait_seconds 0 would mean "do not wait").
        const absl::Duration left = std::max(deadline - clock_.Now(), absl::Milliseconds(1));
        request.set_wait_seconds(absl::ToDoubleSeconds(left));
        grpc::ClientContext context;
        SetTimeout(context, left + kServerWaitGrace);
        response.Clear();
        return stub_->Get(&context, request, &response);
      });
  if (status.ok() && !response.found()) {
    status = absl::DeadlineExceededError("");  // the server's wait ended without the key
  }
  if (absl::IsDeadlineExceeded(status)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "rendezvous key '", key, "' in scope '", options_.scope, "' did not appear within ",
        absl::FormatDuration(timeout), status.message().empty() ? "" : ": ", status.message()));
  }
  if (!status.ok()) return status;
  return std::string(response.value());
}

absl::Status GrpcKvStore::Wait(const std::vector<std::string>& keys, absl::Duration timeout) {
  if (keys.empty()) return absl::OkStatus();
  const absl::Time wait_until = clock_.Now() + timeout;
  v1::RendezvousWaitRequest request;
  request.set_agent_id(options_.agent_id);
  request.set_scope(options_.scope);
  for (const std::string& key : keys) request.add_keys(key);
  const absl::Status status = CallWithRetry(
      absl::StrCat("wait for [", absl::StrJoin(keys, ", "), "]"), wait_until,
      [&](absl::Time deadline) {
        const absl::Duration left = std::max(deadline - clock_.Now(), absl::Milliseconds(1));
        request.set_timeout_seconds(absl::ToDoubleSeconds(left));
        grpc::ClientContext context;
        SetTimeout(context, left + kServerWaitGrace);
        v1::RendezvousWaitResponse response;
        return stub_->Wait(&context, request, &response);
      });
  if (absl::IsDeadlineExceeded(status)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "rendezvous keys [", absl::StrJoin(keys, ", "), "] in scope '", options_.scope,
        "' were not all set within ", absl::FormatDuration(timeout), ": ", status.message()));
  }
  return status;
}

absl::StatusOr<int64_t> GrpcKvStore::Add(absl::string_view key, int64_t delta) {
  v1::RendezvousAddRequest request;
  request.set_agent_id(options_.agent_id);
  request.set_scope(options_.scope);
  request.set_key(std::string(key));
  request.set_delta(delta);
  grpc::ClientContext context;
  SetTimeout(context, options_.call_timeout);
  v1::RendezvousAddResponse response;
  const grpc::Status status = stub_->Add(&context, request, &response);
  if (!status.ok()) {
    return FromGrpcStatus(
        absl::StrCat("rendezvous add to '", key, "' in scope '", options_.scope, "'"), status);
  }
  return response.value();
}

}  // namespace moecap
