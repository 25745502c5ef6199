// How a failed run maps onto the API's FailureKind, and whether another attempt may succeed.
#ifndef MOECAP_AGENT_DAEMON_FAILURE_CLASS_H_
#define MOECAP_AGENT_DAEMON_FAILURE_CLASS_H_

#include "absl/status/status.h"
#include "moecap/v1/agent_service.pb.h"

namespace moecap::agentd {

struct FailureClass {
  v1::FailureKind kind = v1::FAILURE_KIND_INTERNAL;
  bool retryable = true;  // whether another attempt (maybe elsewhere) may succeed
};

// The kind of a failed assignment from the status its run ended with. The code first:
// Cancelled -> CANCELLED; plan errors (InvalidArgument, FailedPrecondition, Unimplemented,
// OutOfRange) -> SETUP; ResourceExhausted -> RESOURCES. Then the FailureCause the error was made
// with (common/failure_cause.h): rendezvous -> RENDEZVOUS; the launcher's overall deadline ->
// TIMEOUT; collective -> COLLECTIVE; a crashed rank -> INTERNAL. Without a cause, a lost peer or
// a timeout (Unavailable, DeadlineExceeded, Aborted) -> COLLECTIVE; the rest -> INTERNAL.
FailureClass ClassifyFailure(const absl::Status& status);

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_FAILURE_CLASS_H_
