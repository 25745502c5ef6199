// The coordinator's source of time. Everything that expires (leases, rendezvous waits, point
// deadlines, queue timeouts, backfill windows) reads it, so tests drive time with a fake clock
// instead of sleeping.
#ifndef MOECAP_COORDINATOR_CLOCK_H_
#define MOECAP_COORDINATOR_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace moecap::coordinator {

// Thread-safe: Now() may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace moecap::coordinator

#endif  // MOECAP_COORDINATOR_CLOCK_H_
