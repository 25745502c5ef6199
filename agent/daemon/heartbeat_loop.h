// Keeps the agent's lease: a Heartbeat every `interval` with the agent's state (from a hook),
// commands in the answers (cancel, drain) handed to a hook, failures counted. It gives up on the
// registration, calling on_lost once, when the coordinator no longer knows the agent (NOT_FOUND)
// or no heartbeat got through for a whole lease: the session then registers again.
#ifndef MOECAP_AGENT_DAEMON_HEARTBEAT_LOOP_H_
#define MOECAP_AGENT_DAEMON_HEARTBEAT_LOOP_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "agent/daemon/coordinator_client.h"
#include "common/clock.h"

namespace moecap::agentd {

struct HeartbeatHooks {
  // The state to report (agent_id is filled in by the loop).
  std::function<v1::HeartbeatRequest()> state;
  std::function<void(const v1::AgentCommand&)> on_command;
  // The registration is gone or unreachable for a lease: register again. Called at most once.
  std::function<void(const absl::Status&)> on_lost;
  std::function<void()> on_failure;  // one heartbeat failed (metrics)
};

class HeartbeatLoop {
 public:
  // `client`, `clock` must outlive the loop.
  HeartbeatLoop(CoordinatorClient& client, Clock& clock, std::string agent_id,
                absl::Duration interval, absl::Duration lease, HeartbeatHooks hooks);
  ~HeartbeatLoop();  // Stop()
  HeartbeatLoop(const HeartbeatLoop&) = delete;
  HeartbeatLoop& operator=(const HeartbeatLoop&) = delete;

  // Beats from a thread of its own, the first one after `interval`.
  void Start();
  // Ends the thread (at once when it is waiting; after the call in flight otherwise). Idempotent.
  void Stop();

  // One heartbeat at clock.Now(): the loop's body, public for tests. False once the registration
  // is lost (on_lost has been called).
  bool BeatOnce();

 private:
  void Loop();

  CoordinatorClient& client_;
  Clock& clock_;
  const std::string agent_id_;
  const absl::Duration interval_;
  const absl::Duration lease_;
  HeartbeatHooks hooks_;
  absl::Time last_success_;  // only touched by the beating thread
  bool lost_ = false;        // likewise
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_HEARTBEAT_LOOP_H_
