// A failed run's status maps onto the API's FailureKind and whether it is worth retrying.
#include <gtest/gtest.h>

#include "agent/daemon/failure_class.h"
#include "common/failure_cause.h"
#include "common/status_macros.h"

namespace moecap::agentd {
namespace {

TEST(FailureClassTest, FailuresMapToTheirKinds) {
  struct Case {
    absl::Status status;
    v1::FailureKind kind;
    bool retryable;
  };
  const Case cases[] = {
      {absl::CancelledError("stop"), v1::FAILURE_KIND_CANCELLED, false},
      {absl::InvalidArgumentError("experts (8) not divisible"), v1::FAILURE_KIND_SETUP, false},
      {absl::UnimplementedError("bf16"), v1::FAILURE_KIND_SETUP, false},
      {absl::ResourceExhaustedError("does not fit"), v1::FAILURE_KIND_RESOURCES, false},
      {WithFailureCause(absl::DeadlineExceededError("rank 0 of 2: timed out"),
                        FailureCause::kRendezvous),
       v1::FAILURE_KIND_RENDEZVOUS, true},
      {WithFailureCause(absl::DeadlineExceededError("did not finish within 10s"),
                        FailureCause::kTimeout),
       v1::FAILURE_KIND_TIMEOUT, false},
      {WithFailureCause(absl::InternalError("rank 0 was killed by signal 9 without a result"),
                        FailureCause::kCrash),
       v1::FAILURE_KIND_INTERNAL, true},
      {absl::UnavailableError("rank 1 of 2: all_to_all failed: Connection closed by peer"),
       v1::FAILURE_KIND_COLLECTIVE, true},
      {absl::DeadlineExceededError("rank 1: barrier failed (timeout 20s): Timed out"),
       v1::FAILURE_KIND_COLLECTIVE, true},
      {absl::InternalError("rank 0 was killed by signal 9 without a result"),
       v1::FAILURE_KIND_INTERNAL, true},
  };
  for (const Case& c : cases) {
    const FailureClass got = ClassifyFailure(c.status);
    EXPECT_EQ(got.kind, c.kind) << c.status;
    EXPECT_EQ(got.retryable, c.retryable) << c.status;
  }
}

// The kind comes from the cause the error was made with, never from its words: a message that
// says "rendezvous" or "did not finish within" decides nothing, and a cause survives the prefixes
// the harness adds on the way up.
TEST(FailureClassTest, TheCauseDecidesNotTheMessage) {
  EXPECT_EQ(ClassifyFailure(absl::DeadlineExceededError("rendezvous: the job did not finish "
                                                        "within 10s"))
                .kind,
            v1::FAILURE_KIND_COLLECTIVE);
  const absl::Status annotated = Annotate(
      Annotate(
          WithFailureCause(absl::UnavailableError("connection refused"), FailureCause::kRendezvous),
          "rank 1 of 4"),
      "decode batch 8");
  EXPECT_EQ(annotated.message(), "decode batch 8: rank 1 of 4: connection refused");
  EXPECT_EQ(ClassifyFailure(annotated).kind, v1::FAILURE_KIND_RENDEZVOUS);
}

}  // namespace
}  // namespace moecap::agentd
