// Failure classification: the status code first, then the cause the error was made with.
#include "agent/daemon/failure_class.h"

#include <optional>

#include "common/failure_cause.h"

namespace moecap::agentd {

FailureClass ClassifyFailure(const absl::Status& status) {
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
  if (const std::optional<FailureCause> cause = FailureCauseOf(status); cause.has_value()) {
    switch (*cause) {
      case FailureCause::kRendezvous:
        return {v1::FAILURE_KIND_RENDEZVOUS, true};
      case FailureCause::kTimeout:
        return {v1::FAILURE_KIND_TIMEOUT, false};
      case FailureCause::kCollective:
        return {v1::FAILURE_KIND_COLLECTIVE, true};
      case FailureCause::kCrash:
        return {v1::FAILURE_KIND_INTERNAL, true};
    }
  }
  // No cause named: a broken connection or a timeout after the ranks met.
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) || absl::IsAborted(status)) {
    return {v1::FAILURE_KIND_COLLECTIVE, true};
  }
  return {v1::FAILURE_KIND_INTERNAL, true};
}

}  // namespace moecap::agentd
