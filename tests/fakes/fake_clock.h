// A clock tests move by hand (common/clock.h), so lease, timeout, backoff and polling rules are
// tested without sleeping.
//
// Waits of the thread that created the clock (the test's) return at once: time jumps to the
// deadline, and the wait is recorded. Waits of any other thread (a heartbeat loop in the
// background) last until their stop is notified, so background loops never race the test's time.
#ifndef MOECAP_TESTS_FAKES_FAKE_CLOCK_H_
#define MOECAP_TESTS_FAKES_FAKE_CLOCK_H_

#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace moecap {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1700000000))
      : driver_(std::this_thread::get_id()), now_(start) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  bool WaitUntil(absl::Time deadline, const absl::Notification& stop) const override {
    if (std::this_thread::get_id() != driver_) {
      stop.WaitForNotification();
      return true;
    }
    if (stop.HasBeenNotified()) return true;
    absl::MutexLock lock(&mu_);
    waits_.push_back(deadline - now_);
    if (deadline > now_) now_ = deadline;
    if (on_wait_) on_wait_(waits_.size());
    return stop.HasBeenNotified();
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  // How long each wait of the test's thread asked for, in order.
  std::vector<absl::Duration> waits() const {
    absl::MutexLock lock(&mu_);
    return waits_;
  }
  // Called (under the clock's lock: must not call back into the clock) after each wait.
  void set_on_wait(std::function<void(size_t)> f) {
    absl::MutexLock lock(&mu_);
    on_wait_ = std::move(f);
  }

 private:
  const std::thread::id driver_;
  mutable absl::Mutex mu_;
  mutable absl::Time now_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<absl::Duration> waits_ ABSL_GUARDED_BY(mu_);
  std::function<void(size_t)> on_wait_ ABSL_GUARDED_BY(mu_);
};

}  // namespace moecap

#endif  // MOECAP_TESTS_FAKES_FAKE_CLOCK_H_
