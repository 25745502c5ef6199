// Backoff: the nominal delay doubles (by `multiplier`) to its cap; jitter is applied on top.
#include "agent/daemon/backoff.h"

#include <algorithm>
#include <memory>

#include "absl/random/random.h"
#include "absl/random/uniform_real_distribution.h"
#include "absl/strings/str_cat.h"

namespace moecap::agentd {

absl::Status ValidateBackoff(const BackoffOptions& o) {
  if (o.initial <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("backoff initial delay must be positive");
  }
  if (o.max < o.initial) {
    return absl::InvalidArgumentError(
        absl::StrCat("backoff max delay (", absl::FormatDuration(o.max),
                     ") must be at least the initial one (", absl::FormatDuration(o.initial), ")"));
  }
  if (!(o.multiplier >= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("backoff multiplier must be >= 1, got ", o.multiplier));
  }
  if (!(o.jitter >= 0.0 && o.jitter < 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("backoff jitter must be in [0, 1), got ", o.jitter));
  }
  return absl::OkStatus();
}

Backoff::Backoff(BackoffOptions options, std::function<double()> uniform01)
    : options_(options), uniform01_(std::move(uniform01)), nominal_(options.initial) {
  if (!uniform01_) {
    auto gen = std::make_shared<absl::BitGen>();
    uniform01_ = [gen] { return absl::Uniform<double>(*gen, 0.0, 1.0); };
  }
}

absl::Duration Backoff::NextDelay() {
  const absl::Duration nominal = std::min(nominal_, options_.max);
  nominal_ = std::min(nominal_ * options_.multiplier, options_.max);
  const double u = std::clamp(uniform01_(), 0.0, 1.0);
  const double factor = 1.0 - options_.jitter + 2.0 * options_.jitter * u;
  return nominal * factor;
}

}  // namespace moecap::agentd
