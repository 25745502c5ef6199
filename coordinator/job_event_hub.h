// Fan-out of job events to WatchJob callers: each watcher subscribes to one job and receives its
// state changes, point changes, results (and progress when asked) in order, then is closed after
// the terminal state. Decouples the JobManager from gRPC reactors.
//
// Thread-safe. Publish holds the hub's lock while delivering, to keep each job's order: a watcher
// must not call the hub from OnEvent or OnEnd.
#ifndef MOECAP_COORDINATOR_JOB_EVENT_HUB_H_
#define MOECAP_COORDINATOR_JOB_EVENT_HUB_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "moecap/v1/job_service.pb.h"

namespace moecap::coordinator {

class JobEventHub {
 public:
  class Watcher {
   public:
    virtual ~Watcher() = default;
    // Queues an event for writing; must not block.
    virtual void OnEvent(const v1::WatchJobResponse& event) = 0;
    // No more events: finish the stream with `status` once the queue is written (OK after the
    // job's terminal state; UNAVAILABLE when the coordinator shuts down).
    virtual void OnEnd(const absl::Status& status) = 0;
  };
  using SubscriptionId = uint64_t;

  SubscriptionId Subscribe(absl::string_view job_id, bool include_progress,
                           std::shared_ptr<Watcher> watcher);
  void Unsubscribe(SubscriptionId id);
  // Delivers to the job's watchers (progress only to those that asked). `terminal`: then ends
  // and drops them.
  void Publish(absl::string_view job_id, const v1::WatchJobResponse& event, bool terminal);
  // Ends every watcher with `status` (shutdown).
  void EndAll(const absl::Status& status);
  size_t size() const;

 private:
  struct Subscription {
    std::string job_id;
    bool include_progress = false;
    std::shared_ptr<Watcher> watcher;
  };
  mutable absl::Mutex mu_;
  std::map<SubscriptionId, Subscription> subscriptions_ ABSL_GUARDED_BY(mu_);
  std::multimap<std::string, SubscriptionId> by_job_ ABSL_GUARDED_BY(mu_);
  SubscriptionId next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_JOB_EVENT_HUB_H_
