// Per-agent assignment streams and outboxes.
#include "coordinator/agent_stream_hub.h"

#include <utility>
#include <vector>

namespace moecap::coordinator {

void AgentStreamHub::Attach(absl::string_view agent_id, std::shared_ptr<Sink> sink) {
  std::shared_ptr<Sink> old;
  {
    // Delivering under the lock keeps the order of messages against concurrent Sends; a sink
    // never calls the hub from Deliver.
    absl::MutexLock lock(&mu_);
    Entry& e = agents_[std::string(agent_id)];
    old = std::move(e.sink);
    e.sink = sink;
    ++version_;
    for (const auto& m : e.outbox) sink->Deliver(m);
    e.outbox.clear();
  }
  if (old != nullptr) old->Close(absl::AbortedError("replaced by a newer assignment stream"));
}

bool AgentStreamHub::Detach(absl::string_view agent_id, const Sink* sink) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(std::string(agent_id));
  if (it == agents_.end() || it->second.sink.get() != sink) return false;
  it->second.sink.reset();
  ++version_;
  return true;
}

void AgentStreamHub::Send(absl::string_view agent_id,
                          const v1::StreamAssignmentsResponse& message) {
  absl::MutexLock lock(&mu_);
  Entry& e = agents_[std::string(agent_id)];
  if (e.sink != nullptr) {
    e.sink->Deliver(message);
    return;
  }
  e.outbox.push_back(message);
  while (e.outbox.size() > max_outbox_) e.outbox.pop_front();
}

void AgentStreamHub::Reset(absl::string_view agent_id) {
  std::shared_ptr<Sink> old;
  {
    absl::MutexLock lock(&mu_);
    auto it = agents_.find(std::string(agent_id));
    if (it == agents_.end()) return;
    old = std::move(it->second.sink);
    agents_.erase(it);
    ++version_;
  }
  if (old != nullptr) old->Close(absl::AbortedError("the agent registered again"));
}

bool AgentStreamHub::IsOpen(absl::string_view agent_id) const {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(std::string(agent_id));
  return it != agents_.end() && it->second.sink != nullptr;
}

void AgentStreamHub::CloseAll(const absl::Status& status) {
  std::vector<std::shared_ptr<Sink>> sinks;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, e] : agents_) {
      if (e.sink != nullptr) sinks.push_back(std::move(e.sink));
    }
  }
  for (auto& s : sinks) s->Close(status);
}

}  // namespace moecap::coordinator
