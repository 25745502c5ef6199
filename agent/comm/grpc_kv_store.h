// A KvStore served by the coordinator (moecap.v1.RendezvousService): how the ranks of different
// agents meet in a cluster. Every key lives in one scope, the assignment's rendezvous_prefix, and
// every call names the agent whose ranks may use it. Waits happen on the server (Get with
// wait_seconds, Wait with timeout_seconds), so a rank does not poll; a call the coordinator could
// not take (UNAVAILABLE: restarting, not reachable yet) is retried until the caller's deadline.
#ifndef MOECAP_AGENT_COMM_GRPC_KV_STORE_H_
#define MOECAP_AGENT_COMM_GRPC_KV_STORE_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agent/comm/kv_store.h"
#include "common/clock.h"
#include "moecap/v1/rendezvous_service.grpc.pb.h"

namespace moecap {

struct GrpcKvStoreOptions {
  std::string agent_id;  // the agent holding a rank of the scope's attempt
  std::string scope;     // Assignment.rendezvous_prefix
  // Bounds Set and Add (which do not wait for anything but the coordinator), retries included.
  absl::Duration call_timeout = absl::Seconds(30);
  // Pause before retrying a call that found the coordinator unavailable; doubles up to 1 s.
  absl::Duration retry_interval = absl::Milliseconds(50);
};

class GrpcKvStore : public KvStore {
 public:
  // `channel` leads to the coordinator; it is shared, and the store may be used from many threads.
  // `clock` times the callers' timeouts and the pauses between retries (each RPC's own deadline is
  // what is left of its caller's, counted by gRPC from when it is sent); it must outlive the store.
  GrpcKvStore(std::shared_ptr<grpc::Channel> channel, GrpcKvStoreOptions options,
              const Clock& clock = SystemClock());

  absl::Status Set(absl::string_view key, absl::string_view value) override;
  // DeadlineExceeded names the key; NotFound when the scope is gone (the attempt is over).
  absl::StatusOr<std::string> Get(absl::string_view key, absl::Duration timeout) override;
  absl::Status Wait(const std::vector<std::string>& keys, absl::Duration timeout) override;
  // Never retried: an addition is not idempotent, and an UNAVAILABLE call may have been applied.
  absl::StatusOr<int64_t> Add(absl::string_view key, int64_t delta) override;

  const GrpcKvStoreOptions& options() const { return options_; }

 private:
  // Runs `call` (one RPC, given its deadline on clock_) until it succeeds, fails with anything but
  // UNAVAILABLE, or `deadline` passes. `what` names the operation in errors.
  template <typename Call>
  absl::Status CallWithRetry(absl::string_view what, absl::Time deadline, Call&& call);

  std::unique_ptr<v1::RendezvousService::Stub> stub_;
  GrpcKvStoreOptions options_;
  const Clock& clock_;
};

// A gRPC status as an absl::Status with the same code, the message prefixed by `context`.
absl::Status FromGrpcStatus(absl::string_view context, const grpc::Status& status);

}  // namespace moecap

#endif  // MOECAP_AGENT_COMM_GRPC_KV_STORE_H_
