// Why an operation failed, beyond its status code, carried on the absl::Status itself (a payload)
// from where the error is made to whoever decides what to do about it: the agent turns it into
// the API's FailureKind (agent/daemon/failure_class.h), the launcher into "root cause or
// knock-on". Codes say what kind of error it is (Unavailable, DeadlineExceeded); the cause says
// which stage of a run it belongs to, which codes cannot (a rendezvous and a collective both time
// out with DeadlineExceeded). It survives Annotate and the rank process boundary (RankError.cause).
#ifndef MOECAP_COMMON_FAILURE_CAUSE_H_
#define MOECAP_COMMON_FAILURE_CAUSE_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace moecap {

enum class FailureCause {
  kRendezvous,  // the ranks did not all meet (store, communicator set-up)
  kCollective,  // a peer was lost or a collective timed out once the ranks had met
  kTimeout,     // the whole run overran its deadline
  kCrash,       // a rank process died without saying why
};

absl::string_view FailureCauseName(FailureCause cause);  // "rendezvous", "collective", ...
std::optional<FailureCause> ParseFailureCause(absl::string_view name);

// `status` with `cause` attached (replacing any earlier one); OK stays OK.
absl::Status WithFailureCause(absl::Status status, FailureCause cause);

// The cause attached to `status`, if any.
std::optional<FailureCause> FailureCauseOf(const absl::Status& status);

}  // namespace moecap

#endif  // MOECAP_COMMON_FAILURE_CAUSE_H_
