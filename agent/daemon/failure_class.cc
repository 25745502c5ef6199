// Failure classification.
#include "agent/daemon/failure_class.h"

#include "absl/strings/match.h"

namespace moecap::agentd {

FailureClass ClassifyFailure(const absl::Status& status) {
  const absl::string_view message = status.message();
  switch (status.code()) {
    case absl::StatusCode::kCancelled:
      return {v1::FAILURE_KIND_CANCELLED, false};
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kOutOfRange:
      return {v1::FAILURE_KIND_SETUP, false};
    case absl::StatusCode::kResourceExhausted:
      return {v1::FAILURE_KIND_RESOURCES, false};
    default:
      break;
  }
  if (absl::StrContains(message, "rendezvous")) return {v1::FAILURE_KIND_RENDEZVOUS, true};
  // LocalLauncher's own bound on the whole run (the assignment's deadline).
  if (absl::IsDeadlineExceeded(status) && absl::StrContains(message, "did not finish within")) {
    return {v1::FAILURE_KIND_TIMEOUT, false};
  }
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) || absl::IsAborted(status)) {
    return {v1::FAILURE_KIND_COLLECTIVE, true};
  }
  return {v1::FAILURE_KIND_INTERNAL, true};
}

}  // namespace moecap::agentd
