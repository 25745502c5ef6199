// HeartbeatLoop: one thread, bounded calls, waits that a Stop ends at once.
#include "agent/daemon/heartbeat_loop.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace moecap::agentd {

HeartbeatLoop::HeartbeatLoop(CoordinatorClient& client, Clock& clock, std::string agent_id,
                             absl::Duration interval, absl::Duration lease, HeartbeatHooks hooks)
    : client_(client),
      clock_(clock),
      agent_id_(std::move(agent_id)),
      interval_(interval),
      lease_(lease),
      hooks_(std::move(hooks)),
      last_success_(clock.Now()) {}

HeartbeatLoop::~HeartbeatLoop() { Stop(); }

void HeartbeatLoop::Start() {
  last_success_ = clock_.Now();
  thread_ = std::thread([this] { Loop(); });
}

void HeartbeatLoop::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

void HeartbeatLoop::Loop() {
  absl::Time next = clock_.Now() + interval_;
  while (!clock_.WaitUntil(next, stop_)) {
    if (!BeatOnce()) return;
    next = clock_.Now() + interval_;
  }
}

bool HeartbeatLoop::BeatOnce() {
  if (lost_) return false;
  v1::HeartbeatRequest request = hooks_.state ? hooks_.state() : v1::HeartbeatRequest();
  request.set_agent_id(agent_id_);
  absl::StatusOr<v1::HeartbeatResponse> response = client_.Heartbeat(request);
  const absl::Time now = clock_.Now();
  if (response.ok()) {
    last_success_ = now;
    for (const v1::AgentCommand& command : response->commands()) {
      if (hooks_.on_command) hooks_.on_command(command);
    }
    return true;
  }
  if (hooks_.on_failure) hooks_.on_failure();
  absl::Status lost;
  if (absl::IsNotFound(response.status())) {
    lost = response.status();
  } else if (now - last_success_ >= lease_) {
    lost = absl::UnavailableError(absl::StrCat(
        "no heartbeat got through for ", absl::FormatDuration(now - last_success_), " (lease ",
        absl::FormatDuration(lease_), "); last error: ", response.status().message()));
  }
  if (lost.ok()) {
    spdlog::warn("heartbeat failed (will retry): {}", response.status().ToString());
    return true;
  }
  spdlog::warn("registration lost: {}", lost.ToString());
  lost_ = true;
  if (hooks_.on_lost) hooks_.on_lost(lost);
  return false;
}

}  // namespace moecap::agentd
