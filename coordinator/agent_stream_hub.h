// Delivery of assignments and cancellations to agents: each agent keeps one StreamAssignments
// call open (a Sink); messages sent while it has none wait in a bounded outbox and go out when
// it opens one. Decouples the JobManager from gRPC reactors.
//
// Thread-safe. Sinks are called with no hub lock held.
#ifndef MOECAP_COORDINATOR_AGENT_STREAM_HUB_H_
#define MOECAP_COORDINATOR_AGENT_STREAM_HUB_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "moecap/v1/agent_service.pb.h"

namespace moecap::coordinator {

class AgentStreamHub {
 public:
  // One open stream. Deliver queues a message for writing and must not block; Close ends the
  // stream with `status` (a newer stream replaced it, or the coordinator shuts down).
  class Sink {
   public:
    virtual ~Sink() = default;
    virtual void Deliver(const v1::StreamAssignmentsResponse& message) = 0;
    virtual void Close(const absl::Status& status) = 0;
  };

  explicit AgentStreamHub(size_t max_outbox = 1024) : max_outbox_(max_outbox) {}

  // Makes `sink` the agent's stream (closing an older one with ABORTED) and hands it the outbox.
  void Attach(absl::string_view agent_id, std::shared_ptr<Sink> sink);
  // Forgets `sink` if it is still the agent's stream; returns whether it was (false when a newer
  // stream replaced it or the hub closed it).
  bool Detach(absl::string_view agent_id, const Sink* sink);
  // Sends now, or keeps for the next stream (dropping the oldest beyond max_outbox).
  void Send(absl::string_view agent_id, const v1::StreamAssignmentsResponse& message);
  // A new incarnation of the agent: drop what was queued for the old one and close its stream.
  void Reset(absl::string_view agent_id);
  bool IsOpen(absl::string_view agent_id) const;
  // Grows whenever a stream opens or closes (the scheduler skips a pass when nothing changed).
  int64_t version() const {
    absl::MutexLock lock(&mu_);
    return version_;
  }
  // Closes every stream (shutdown).
  void CloseAll(const absl::Status& status);

 private:
  struct Entry {
    std::shared_ptr<Sink> sink;
    std::deque<v1::StreamAssignmentsResponse> outbox;
  };
  const size_t max_outbox_;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> agents_ ABSL_GUARDED_BY(mu_);
  int64_t version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_AGENT_STREAM_HUB_H_
