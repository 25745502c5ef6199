// Time for the agent's retry, backoff and heartbeat logic, injected so that tests drive it without
// sleeping: the real clock waits on an absl::Notification (so a shutdown ends any wait at once);
// a fake clock (tests) records the waits and advances its own time.
#ifndef MOECAP_AGENT_DAEMON_CLOCK_H_
#define MOECAP_AGENT_DAEMON_CLOCK_H_

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace moecap::agentd {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  // Waits until `deadline` or until `stop` is notified, whichever comes first. Returns true when
  // `stop` was notified (the caller should wind down), false when the deadline passed.
  virtual bool WaitUntil(absl::Time deadline, const absl::Notification& stop) = 0;
};

class RealClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  bool WaitUntil(absl::Time deadline, const absl::Notification& stop) override {
    return stop.WaitForNotificationWithDeadline(deadline);
  }
};

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_CLOCK_H_
