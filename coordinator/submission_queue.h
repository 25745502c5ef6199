// Submissions apart from heartbeats. A SubmitPlan is parsed, validated and committed by worker
// threads of its own, not by gRPC's callback threads: those serve heartbeats, reports and
// streams, and a burst of plans (YAML parsing is most of a submission's CPU) would otherwise
// hold them and the cores, so that heartbeats wait and leases run out (docs/load.md). The
// workers run at a lower CPU priority (nice), so that on a saturated machine the kernel serves
// the heartbeats first, and they take what has queued up in batches: one store transaction per
// batch (group commit), which is what lets submissions keep up when they arrive faster than one
// transaction each could be written.
#ifndef MOECAP_COORDINATOR_SUBMISSION_QUEUE_H_
#define MOECAP_COORDINATOR_SUBMISSION_QUEUE_H_

#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/job_manager.h"
#include "moecap/v1/job.pb.h"

namespace moecap::coordinator {

struct SubmissionQueueOptions {
  int workers = 1;     // threads that parse and commit submissions
  int max_batch = 64;  // submissions committed in one transaction at most
  // Submissions waiting at most; one more is refused at once (ResourceExhausted, "retry"), so
  // a flood costs the coordinator bounded memory and the caller learns it must slow down.
  int max_pending = 8192;
  // Added to the workers' niceness (Linux; 0 keeps the coordinator's priority).
  int nice = 10;
};

class SubmissionQueue {
 public:
  // Called once per submission, on a worker thread, with what JobManager::Submit would return.
  using Done = absl::AnyInvocable<void(absl::StatusOr<v1::Job>) &&>;

  // `jobs` must outlive the queue. Starts the workers.
  SubmissionQueue(JobManager& jobs, SubmissionQueueOptions options);
  SubmissionQueue(const SubmissionQueue&) = delete;
  SubmissionQueue& operator=(const SubmissionQueue&) = delete;
  ~SubmissionQueue();  // Stop()

  // Queues `submission`; `done` runs later with its result. Refused at once, `done` not called:
  // ResourceExhausted when max_pending are waiting, Unavailable once stopping.
  absl::Status Post(Submission submission, Done done);

  // Refuses new submissions, lets the workers finish every queued one, and joins them.
  void Stop();

  // Submissions waiting for a worker (not those being committed).
  int64_t pending() const;
  // Batches taken so far: each is one JobManager::SubmitAll, one store transaction.
  int64_t batches() const;

 private:
  struct Item {
    Submission submission;
    Done done;
  };
  void Work();
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }

  JobManager& jobs_;
  const SubmissionQueueOptions options_;
  mutable absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t batches_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> workers_;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_SUBMISSION_QUEUE_H_
