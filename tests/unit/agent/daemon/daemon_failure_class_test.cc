// A failed run's status maps onto the API's FailureKind and whether it is worth retrying.
#include <gtest/gtest.h>

#include "agent/daemon/failure_class.h"

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
      {absl::DeadlineExceededError("rank 0 of 2: Gloo rendezvous under 'gloo' timed out"),
       v1::FAILURE_KIND_RENDEZVOUS, true},
      {absl::DeadlineExceededError("the job did not finish within 10s"), v1::FAILURE_KIND_TIMEOUT,
       false},
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

}  // namespace
}  // namespace moecap::agentd
