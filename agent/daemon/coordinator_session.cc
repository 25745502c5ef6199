// CoordinatorSession: the register / stream / reconnect loop.
#include "agent/daemon/coordinator_session.h"

#include "absl/strings/str_cat.h"
#include "agent/daemon/heartbeat_loop.h"
#include "spdlog/spdlog.h"

namespace moecap::agentd {

CoordinatorSession::CoordinatorSession(CoordinatorClient& client, Clock& clock, v1::AgentInfo info,
                                       SessionOptions options, AssignmentHandler& handler,
                                       AgentMetrics* metrics, std::function<double()> uniform01)
    : client_(client),
      clock_(clock),
      info_(std::move(info)),
      options_(options),
      handler_(handler),
      metrics_(metrics),
      backoff_(options.reconnect, std::move(uniform01)) {}

std::string CoordinatorSession::agent_id() const {
  absl::MutexLock lock(&mu_);
  return agent_id_;
}

bool CoordinatorSession::connected() const {
  absl::MutexLock lock(&mu_);
  return connected_;
}

int CoordinatorSession::registrations() const {
  absl::MutexLock lock(&mu_);
  return registrations_;
}

void CoordinatorSession::Shutdown() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  absl::MutexLock lock(&mu_);
  if (stream_ != nullptr) stream_->Cancel();
}

void CoordinatorSession::Run() {
  while (!stop_.HasBeenNotified()) {
    absl::Time connected_at = absl::InfinitePast();
    const bool registered = ServeOnce(connected_at);
    if (stop_.HasBeenNotified()) break;
    // A connection that lasted was healthy: start the backoff over. A coordinator that accepts
    // the registration but drops the stream at once keeps backing off, as one that refuses it.
    if (registered && clock_.Now() - connected_at >= options_.healthy_connection) {
      backoff_.Reset();
    }
    const absl::Duration delay = backoff_.NextDelay();
    spdlog::info("reconnecting to the coordinator in {}", absl::FormatDuration(delay));
    if (clock_.WaitUntil(clock_.Now() + delay, stop_)) break;
  }
}

bool CoordinatorSession::ServeOnce(absl::Time& connected_at) {
  v1::RegisterRequest request;
  *request.mutable_agent() = info_;
  request.set_previous_agent_id(agent_id());
  absl::StatusOr<v1::RegisterResponse> registered = client_.Register(request);
  if (!registered.ok()) {
    spdlog::warn("registration failed: {}", registered.status().ToString());
    return false;
  }
  const std::string id = registered->agent_id();
  const absl::Duration lease = absl::Seconds(registered->lease_seconds());
  absl::Duration interval = absl::Seconds(registered->heartbeat_interval_seconds());
  if (interval <= absl::ZeroDuration()) interval = lease * options_.lease_fraction;
  if (interval <= absl::ZeroDuration()) interval = absl::Seconds(1);
  spdlog::info("registered as {} (lease {}, heartbeat every {}{})", id, absl::FormatDuration(lease),
               absl::FormatDuration(interval),
               request.previous_agent_id().empty()
                   ? ""
                   : absl::StrCat(", previously ", request.previous_agent_id()));

  std::unique_ptr<AssignmentStream> stream = client_.StreamAssignments(id);
  bool reregistered = false;
  {
    absl::MutexLock lock(&mu_);
    agent_id_ = id;
    reregistered = registrations_ > 0;
    ++registrations_;
    connected_ = true;
    stream_ = stream.get();
  }
  if (reregistered) handler_.OnReregistered();
  // A Shutdown between the registration and the line above found no stream to cancel.
  if (stop_.HasBeenNotified()) stream->Cancel();
  connected_at = clock_.Now();
  if (metrics_ != nullptr) metrics_->SetConnected(true);

  HeartbeatHooks hooks;
  hooks.state = [this] { return handler_.State(); };
  hooks.on_command = [this](const v1::AgentCommand& command) {
    if (command.has_cancel()) handler_.OnCancel(command.cancel());
    if (command.has_drain()) handler_.OnDrain();
  };
  hooks.on_lost = [this](const absl::Status&) {
    absl::MutexLock lock(&mu_);
    if (stream_ != nullptr) stream_->Cancel();  // Read returns; the session registers again
  };
  hooks.on_failure = [this] {
    if (metrics_ != nullptr) metrics_->HeartbeatFailed();
  };
  HeartbeatLoop heartbeats(client_, clock_, id, interval, lease, std::move(hooks));
  heartbeats.Start();

  v1::StreamAssignmentsResponse event;
  while (stream->Read(&event)) HandleEvent(event);
  heartbeats.Stop();
  {
    absl::MutexLock lock(&mu_);
    connected_ = false;
    stream_ = nullptr;
  }
  if (metrics_ != nullptr) metrics_->SetConnected(false);
  const absl::Status ended = stream->Finish();
  if (!stop_.HasBeenNotified()) {
    spdlog::warn("assignment stream ended: {}", ended.ToString());
  }
  return true;
}

void CoordinatorSession::HandleEvent(const v1::StreamAssignmentsResponse& event) {
  switch (event.event_case()) {
    case v1::StreamAssignmentsResponse::kAssignment:
      handler_.OnAssignment(event.assignment());
      break;
    case v1::StreamAssignmentsResponse::kCancel:
      handler_.OnCancel(event.cancel());
      break;
    case v1::StreamAssignmentsResponse::EVENT_NOT_SET:
      break;
  }
}

absl::Status CoordinatorSession::Deregister(absl::string_view reason) {
  const std::string id = agent_id();
  if (id.empty()) return absl::OkStatus();
  v1::DeregisterRequest request;
  request.set_agent_id(id);
  request.set_reason(std::string(reason));
  return client_.Deregister(request);
}

}  // namespace moecap::agentd
