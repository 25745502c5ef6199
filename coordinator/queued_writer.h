// A server-streaming callback reactor that writes queued messages one at a time: the shared base
// of the StreamAssignments and WatchJob streams. Producers call Enqueue from any thread (it never
// blocks); Finish is deferred until the write in flight completes, and happens exactly once.
//
// Lifetime: the object owns itself (a shared_ptr released in OnDone), so the hubs may hold
// shared_ptrs and call it after the RPC ended (calls are then ignored).
#ifndef MOECAP_COORDINATOR_QUEUED_WRITER_H_
#define MOECAP_COORDINATOR_QUEUED_WRITER_H_

#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/support/server_callback.h"

namespace moecap::coordinator {

template <typename Message>
class QueuedWriter : public grpc::ServerWriteReactor<Message>,
                     public std::enable_shared_from_this<QueuedWriter<Message>> {
 public:
  explicit QueuedWriter(size_t max_queue) : max_queue_(max_queue) {}

  // Keeps the object alive until OnDone. Call once, right after construction.
  void Own(std::shared_ptr<QueuedWriter> self) {
    absl::MutexLock lock(&mu_);
    self_ = std::move(self);
  }

  // Queues `m` for writing. When the queue is full the stream ends with RESOURCE_EXHAUSTED (a
  // reader that cannot keep up); returns false then or when the stream is over.
  bool Enqueue(const Message& m) {
    absl::MutexLock lock(&mu_);
    if (finishing_) return false;
    if (queue_.size() >= max_queue_) {
      FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                "the reader does not keep up with the stream"));
      return false;
    }
    queue_.push_back(m);
    if (!writing_) {
      writing_ = true;
      this->StartWrite(&queue_.front());
    }
    return true;
  }

  // Ends the stream once the queued messages are written (or at once if `drain` is false).
  void FinishAfterQueue(const grpc::Status& status, bool drain = true) {
    absl::MutexLock lock(&mu_);
    if (!drain) DropQueuedLocked();
    FinishLocked(status);
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (!queue_.empty()) queue_.pop_front();
    if (!ok) {
      queue_.clear();
      writing_ = false;
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the stream broke"));
      return;
    }
    if (!queue_.empty()) {
      this->StartWrite(&queue_.front());
      return;
    }
    writing_ = false;
    if (pending_status_.has_value()) FinishNowLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    DropQueuedLocked();
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }

  void OnDone() override {
    OnStreamDone();
    std::shared_ptr<QueuedWriter> self;
    {
      absl::MutexLock lock(&mu_);
      self = std::move(self_);
    }
    // `self` may be the last owner: the object is destroyed on return, with no lock held.
  }

 protected:
  // Called once when the RPC is over (unsubscribe from hubs here).
  virtual void OnStreamDone() {}

 private:
  // Drops the queued messages but the one being written (its buffer must live until written).
  void DropQueuedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (queue_.empty()) return;
    queue_.erase(writing_ ? queue_.begin() + 1 : queue_.begin(), queue_.end());
  }
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_) return;
    finishing_ = true;
    pending_status_ = status;
    if (!writing_) FinishNowLocked();
  }
  void FinishNowLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    grpc::Status status = *pending_status_;
    pending_status_.reset();
    this->Finish(status);
  }

  const size_t max_queue_;
  absl::Mutex mu_;
  std::deque<Message> queue_ ABSL_GUARDED_BY(mu_);  // front: the message being written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> pending_status_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<QueuedWriter> self_ ABSL_GUARDED_BY(mu_);
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_QUEUED_WRITER_H_
