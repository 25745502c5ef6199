// A clock tests move by hand, so lease, timeout and backfill rules are tested without sleeping.
#ifndef MOECAP_TESTS_UNIT_COORDINATOR_FAKE_CLOCK_H_
#define MOECAP_TESTS_UNIT_COORDINATOR_FAKE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/clock.h"

namespace moecap::coordinator {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000)) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_;
};

}  // namespace moecap::coordinator

#endif  // MOECAP_TESTS_UNIT_COORDINATOR_FAKE_CLOCK_H_
