// The key-value store the data plane meets through (Gloo's store, the NCCL unique id), in scopes:
// one per point attempt (Assignment.rendezvous_prefix), created when the attempt's assignments
// go out and deleted when it ends. Only the agents of the attempt may use a scope.
//
// Waiting calls (Get with a wait, Wait) never block a thread: the caller passes a callback that
// runs exactly once, when the keys are there, when the timeout passes (ExpireWaiters, driven by
// the coordinator's maintenance thread), or when the scope is deleted. Callbacks run on the
// thread that completes them, after the store's lock is released.
//
// Thread-safe.
#ifndef MOECAP_COORDINATOR_RENDEZVOUS_STORE_H_
#define MOECAP_COORDINATOR_RENDEZVOUS_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace moecap::coordinator {

struct RendezvousLimits {
  int64_t max_value_bytes = 1 << 20;  // the API's documented 1 MiB
  int64_t max_key_bytes = 1024;
  int64_t max_keys_per_scope = 16384;
  int64_t max_scope_bytes = 256ll << 20;
  int64_t max_waiters_per_scope = 16384;
  absl::Duration max_wait = absl::Minutes(30);
};

class RendezvousStore {
 public:
  // Status OK with the value (Get; nullopt when the key is not set and there was no wait) or
  // nullopt (Wait); else DEADLINE_EXCEEDED naming the missing keys, NOT_FOUND when the scope was
  // deleted, CANCELLED when the waiter was cancelled, or the argument error.
  using Callback = std::function<void(absl::Status status, std::optional<std::string> value)>;
  using WaiterId = uint64_t;

  RendezvousStore(const Clock& clock, RendezvousLimits limits) : clock_(clock), limits_(limits) {}

  // A scope that `agent_ids` may use. AlreadyExists when it does.
  absl::Status CreateScope(absl::string_view scope, std::set<std::string> agent_ids);
  // Deletes the scope and its keys; its waiters complete with NOT_FOUND. Returns the keys
  // deleted (0 for an unknown scope).
  int64_t DeleteScope(absl::string_view scope);
  // DeleteScope on behalf of an agent: PermissionDenied unless it belongs to the scope.
  absl::StatusOr<int64_t> DeleteScopeAsAgent(absl::string_view agent_id, absl::string_view scope);

  // NotFound (no such scope), PermissionDenied (agent not in the scope), InvalidArgument (empty
  // or oversized key or value), ResourceExhausted (too many keys or bytes in the scope).
  absl::Status Set(absl::string_view agent_id, absl::string_view scope, absl::string_view key,
                   std::string value);
  // Adds `delta` to the counter (created at 0; stored as its decimal text, as Gloo expects).
  // InvalidArgument when the key holds something other than an integer.
  absl::StatusOr<int64_t> Add(absl::string_view agent_id, absl::string_view scope,
                              absl::string_view key, int64_t delta);

  // An id for the next Get/Wait, known before the call so the caller can cancel it later.
  WaiterId NewWaiterId();
  // The value of `key`. With `wait` zero, or when the key is set, the callback runs now, on this
  // thread; otherwise when the key is set or `wait` passes. Argument errors complete it at once.
  void Get(WaiterId id, absl::string_view agent_id, absl::string_view scope, absl::string_view key,
           absl::Duration wait, Callback done);
  // Completes when every key of `keys` is set (value empty) or `timeout` passes.
  void Wait(WaiterId id, absl::string_view agent_id, absl::string_view scope,
            std::vector<std::string> keys, absl::Duration timeout, Callback done);
  // Completes a pending waiter with CANCELLED. False when it already completed (or never began).
  bool Cancel(WaiterId id);

  // Completes with DEADLINE_EXCEEDED every waiter whose deadline is before `now`.
  int ExpireWaiters(absl::Time now);

  int scopes() const;
  int waiters() const;

 private:
  struct Waiter {
    WaiterId id = 0;
    std::string scope;
    std::vector<std::string> keys;
    bool wants_value = false;  // Get: the value of keys[0]
    absl::Time deadline;
    Callback done;
  };
  struct Scope {
    std::set<std::string> agents;
    std::map<std::string, std::string> values;
    int64_t bytes = 0;
    std::set<WaiterId> waiters;
  };
  struct Completion {
    Callback done;
    absl::Status status;
    std::optional<std::string> value;
  };

  absl::StatusOr<Scope*> Access(absl::string_view agent_id, absl::string_view scope)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Put(Scope& s, absl::string_view key, std::string value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waiters of `s` whose keys are now all set, removed and turned into completions.
  void CollectReady(Scope& s, std::vector<Completion>& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddWaiter(Waiter w, Scope& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Run(std::vector<Completion>& completions);

  const Clock& clock_;
  const RendezvousLimits limits_;
  mutable absl::Mutex mu_;
  std::map<std::string, Scope> scopes_ ABSL_GUARDED_BY(mu_);
  std::map<WaiterId, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, WaiterId> deadlines_ ABSL_GUARDED_BY(mu_);
  WaiterId next_waiter_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_RENDEZVOUS_STORE_H_
