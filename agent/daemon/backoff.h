// Exponential backoff with jitter for reconnecting to the coordinator: delays grow by `multiplier`
// from `initial` up to `max`, each spread by ±`jitter` (a fraction) so that many agents cut off by
// one coordinator restart do not all come back in the same instant.
#ifndef MOECAP_AGENT_DAEMON_BACKOFF_H_
#define MOECAP_AGENT_DAEMON_BACKOFF_H_

#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace moecap::agentd {

struct BackoffOptions {
  absl::Duration initial = absl::Milliseconds(500);
  absl::Duration max = absl::Seconds(30);
  double multiplier = 2.0;
  double jitter = 0.2;  // each delay is the nominal one times a uniform factor in [1−j, 1+j]
};

// Errors name the field: initial and max positive, initial <= max, multiplier >= 1, 0 <= jitter
// < 1.
absl::Status ValidateBackoff(const BackoffOptions& options);

class Backoff {
 public:
  // `uniform01` returns uniform random numbers in [0, 1) (tests pass a fixed sequence); unset: a
  // seeded absl::BitGen owned by the object.
  explicit Backoff(BackoffOptions options, std::function<double()> uniform01 = nullptr);

  // The delay before the next attempt: initial·multiplier^n (n = attempts since Reset), capped at
  // max, then jittered (and capped at max·(1+jitter)).
  absl::Duration NextDelay();
  // After a success: the next delay starts from `initial` again.
  void Reset() { nominal_ = options_.initial; }

  const BackoffOptions& options() const { return options_; }

 private:
  BackoffOptions options_;
  std::function<double()> uniform01_;
  absl::Duration nominal_;
};

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_BACKOFF_H_
