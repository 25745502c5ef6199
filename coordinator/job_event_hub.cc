// WatchJob fan-out.
#include "coordinator/job_event_hub.h"

#include <utility>
#include <vector>

namespace moecap::coordinator {

JobEventHub::SubscriptionId JobEventHub::Subscribe(absl::string_view job_id, bool include_progress,
                                                   std::shared_ptr<Watcher> watcher) {
  absl::MutexLock lock(&mu_);
  const SubscriptionId id = next_id_++;
  subscriptions_[id] = {std::string(job_id), include_progress, std::move(watcher)};
  by_job_.emplace(std::string(job_id), id);
  return id;
}

void JobEventHub::Unsubscribe(SubscriptionId id) {
  absl::MutexLock lock(&mu_);
  auto it = subscriptions_.find(id);
  if (it == subscriptions_.end()) return;
  auto [begin, end] = by_job_.equal_range(it->second.job_id);
  for (auto j = begin; j != end; ++j) {
    if (j->second == id) {
      by_job_.erase(j);
      break;
    }
  }
  subscriptions_.erase(it);
}

void JobEventHub::Publish(absl::string_view job_id, const v1::WatchJobResponse& event,
                          bool terminal) {
  absl::MutexLock lock(&mu_);
  auto [begin, end] = by_job_.equal_range(std::string(job_id));
  const bool progress = event.has_progress();
  for (auto j = begin; j != end; ++j) {
    const Subscription& s = subscriptions_[j->second];
    if (!progress || s.include_progress) s.watcher->OnEvent(event);
    if (terminal) s.watcher->OnEnd(absl::OkStatus());
  }
  if (terminal) {
    for (auto j = begin; j != end; ++j) subscriptions_.erase(j->second);
    by_job_.erase(begin, end);
  }
}

void JobEventHub::EndAll(const absl::Status& status) {
  std::vector<std::shared_ptr<Watcher>> watchers;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, s] : subscriptions_) watchers.push_back(std::move(s.watcher));
    subscriptions_.clear();
    by_job_.clear();
  }
  for (auto& w : watchers) w->OnEnd(status);
}

size_t JobEventHub::size() const {
  absl::MutexLock lock(&mu_);
  return subscriptions_.size();
}

}  // namespace moecap::coordinator
