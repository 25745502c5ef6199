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

// The kind of a failed assignment from the status its run ended with: Cancelled -> CANCELLED;
// plan errors (InvalidArgument, FailedPrecondition, Unimplemented, OutOfRange) -> SETUP;
// ResourceExhausted -> RESOURCES; anything about the rendezvous -> RENDEZVOUS; the launcher's
// overall deadline -> TIMEOUT; a lost peer or a collective timeout (Unavailable,
// DeadlineExceeded, Aborted) -> COLLECTIVE; the rest (a crashed rank) -> INTERNAL.
FailureClass ClassifyFailure(const absl::Status& status);

}  // namespace moecap::agentd

#endif  // MOECAP_AGENT_DAEMON_FAILURE_CLASS_H_
