// The one source of time: everything that expires or waits (leases, rendezvous and point
// deadlines, queue timeouts, backfill windows, retries and backoff, heartbeats, store polling)
// reads and waits through a Clock, so tests drive time with tests/fakes/fake_clock.h instead of
// sleeping. The real clock waits on an absl::Notification, so a shutdown ends any wait at once.
#ifndef MOECAP_COMMON_CLOCK_H_
#define MOECAP_COMMON_CLOCK_H_

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace moecap {

// Thread-safe: any thread may read and wait.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // Waits until `deadline` or until `stop` is notified, whichever comes first. Returns true when
  // `stop` was notified (the caller should wind down), false when the deadline passed.
  virtual bool WaitUntil(absl::Time deadline, const absl::Notification& stop) const = 0;
  // Waits until `deadline` with nothing to end the wait early (a poll's pause).
  void SleepUntil(absl::Time deadline) const {
    const absl::Notification never;
    WaitUntil(deadline, never);
  }
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  bool WaitUntil(absl::Time deadline, const absl::Notification& stop) const override {
    return stop.WaitForNotificationWithDeadline(deadline);
  }
};

// The real clock, for callers that take a `const Clock&` and are given none (it holds no state).
inline const Clock& SystemClock() {
  static const RealClock clock;
  return clock;
}

}  // namespace moecap

#endif  // MOECAP_COMMON_CLOCK_H_
