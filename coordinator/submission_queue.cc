// SubmissionQueue: worker threads that take queued submissions in batches.
#include "coordinator/submission_queue.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace moecap::coordinator {
namespace {

// Lowers the calling thread's priority by `nice` (Linux: a thread's niceness is its own).
void LowerThisThreadPriority(int nice) {
  if (nice == 0) return;
  const id_t tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, tid);
  if (errno != 0 || setpriority(PRIO_PROCESS, tid, std::min(current + nice, 19)) != 0) {
    spdlog::warn("submission worker: cannot lower its priority by {}: {}", nice,
                 std::strerror(errno));
  }
}

}  // namespace

SubmissionQueue::SubmissionQueue(JobManager& jobs, SubmissionQueueOptions options)
    : jobs_(jobs), options_(options) {
  const int workers = std::max(options_.workers, 1);
  workers_.reserve(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { Work(); });
}

SubmissionQueue::~SubmissionQueue() { Stop(); }

absl::Status SubmissionQueue::Post(Submission submission, Done done) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the coordinator is shutting down");
  if (static_cast<int64_t>(queue_.size()) >= options_.max_pending) {
    return absl::ResourceExhaustedError(
        absl::StrCat(queue_.size(),
                     " submissions are waiting to be committed (the most this "
                     "coordinator queues): retry in a moment"));
  }
  queue_.push_back(Item{std::move(submission), std::move(done)});
  return absl::OkStatus();
}

void SubmissionQueue::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
}

int64_t SubmissionQueue::pending() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(queue_.size());
}

int64_t SubmissionQueue::batches() const {
  absl::MutexLock lock(&mu_);
  return batches_;
}

void SubmissionQueue::Work() {
  LowerThisThreadPriority(options_.nice);
  const size_t max_batch = static_cast<size_t>(std::max(options_.max_batch, 1));
  std::vector<Item> batch;
  std::vector<Submission> submissions;
  while (true) {
    batch.clear();
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &SubmissionQueue::HasWorkOrStopping));
      // Stopping: the queue is drained first, so that every accepted call gets its answer.
      if (queue_.empty()) return;
      while (!queue_.empty() && batch.size() < max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      ++batches_;
    }
    submissions.clear();
    for (Item& item : batch) submissions.push_back(std::move(item.submission));
    std::vector<absl::StatusOr<v1::Job>> results = jobs_.SubmitAll(submissions);
    for (size_t i = 0; i < batch.size(); ++i) std::move(batch[i].done)(std::move(results[i]));
  }
}

}  // namespace moecap::coordinator
