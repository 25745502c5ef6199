// RendezvousStore: scopes, permissions, limits, waits completed by Set, timeouts by the fake
// clock, deletion and cancellation — all without sleeping.
#include "coordinator/rendezvous_store.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "tests/fakes/fake_clock.h"

namespace moecap::coordinator {
namespace {

struct Outcome {
  bool done = false;
  absl::Status status;
  std::optional<std::string> value;
  RendezvousStore::Callback Callback() {
    return [this](absl::Status s, std::optional<std::string> v) {
      EXPECT_FALSE(done) << "completed twice";
      done = true;
      status = std::move(s);
      value = std::move(v);
    };
  }
};

class RendezvousStoreTest : public ::testing::Test {
 protected:
  RendezvousStoreTest() : store_(clock_, Limits()) {
    EXPECT_TRUE(store_.CreateScope("job-1/p0/a1", {"a", "b"}).ok());
  }
  static RendezvousLimits Limits() {
    RendezvousLimits l;
    l.max_value_bytes = 16;
    l.max_keys_per_scope = 3;
    return l;
  }
  FakeClock clock_;
  RendezvousStore store_;
  const std::string scope_ = "job-1/p0/a1";
};

TEST_F(RendezvousStoreTest, SetThenGet) {
  ASSERT_TRUE(store_.Set("a", scope_, "rank0", "addr0").ok());
  Outcome got;
  store_.Get(store_.NewWaiterId(), "b", scope_, "rank0", absl::ZeroDuration(), got.Callback());
  ASSERT_TRUE(got.done);
  EXPECT_TRUE(got.status.ok());
  EXPECT_EQ(got.value, "addr0");
  Outcome missing;
  store_.Get(store_.NewWaiterId(), "b", scope_, "nope", absl::ZeroDuration(), missing.Callback());
  ASSERT_TRUE(missing.done);
  EXPECT_TRUE(missing.status.ok());
  EXPECT_FALSE(missing.value.has_value());  // found = false
}

TEST_F(RendezvousStoreTest, OnlyTheScopesAgentsMayUseIt) {
  EXPECT_EQ(store_.Set("c", scope_, "k", "v").code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(store_.Set("a", "job-1/p0/a2", "k", "v").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_.DeleteScopeAsAgent("c", scope_).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(RendezvousStoreTest, LimitsAreEnforced) {
  EXPECT_EQ(store_.Set("a", scope_, "k", std::string(17, 'x')).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.Set("a", scope_, "", "v").code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_.Set("a", scope_, "k1", "v").ok());
  ASSERT_TRUE(store_.Set("a", scope_, "k2", "v").ok());
  ASSERT_TRUE(store_.Set("a", scope_, "k3", "v").ok());
  EXPECT_EQ(store_.Set("a", scope_, "k4", "v").code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(store_.Set("a", scope_, "k3", "w").ok());  // overwriting adds no key
  Outcome bad;
  store_.Wait(store_.NewWaiterId(), "a", scope_, {"k1"}, absl::ZeroDuration(), bad.Callback());
  EXPECT_EQ(bad.status.code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RendezvousStoreTest, AWaitingGetCompletesWhenTheKeyIsSet) {
  Outcome got;
  store_.Get(store_.NewWaiterId(), "b", scope_, "uid", absl::Seconds(30), got.Callback());
  EXPECT_FALSE(got.done);
  EXPECT_EQ(store_.waiters(), 1);
  ASSERT_TRUE(store_.Set("a", scope_, "uid", "nccl-id").ok());
  ASSERT_TRUE(got.done);
  EXPECT_EQ(got.value, "nccl-id");
  EXPECT_EQ(store_.waiters(), 0);
}

TEST_F(RendezvousStoreTest, WaitNeedsEveryKeyAndTimesOutNamingTheMissingOnes) {
  Outcome all;
  store_.Wait(store_.NewWaiterId(), "a", scope_, {"r0", "r1"}, absl::Seconds(10), all.Callback());
  ASSERT_TRUE(store_.Set("a", scope_, "r0", "x").ok());
  EXPECT_FALSE(all.done);
  // 10 s pass without r1: the wait expires with DEADLINE_EXCEEDED naming r1.
  clock_.Advance(absl::Seconds(9));
  EXPECT_EQ(store_.ExpireWaiters(clock_.Now()), 0);
  clock_.Advance(absl::Milliseconds(1001));
  EXPECT_EQ(store_.ExpireWaiters(clock_.Now()), 1);
  ASSERT_TRUE(all.done);
  EXPECT_EQ(all.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(all.status.message().find("key r1"), std::string::npos) << all.status;
  EXPECT_EQ(all.status.message().find("r0"), std::string::npos);
}

TEST_F(RendezvousStoreTest, AddIsAnAtomicCounter) {
  EXPECT_EQ(*store_.Add("a", scope_, "barrier", 1), 1);
  EXPECT_EQ(*store_.Add("b", scope_, "barrier", 1), 2);
  Outcome got;
  store_.Get(store_.NewWaiterId(), "a", scope_, "barrier", absl::ZeroDuration(), got.Callback());
  EXPECT_EQ(got.value, "2");
  ASSERT_TRUE(store_.Set("a", scope_, "text", "abc").ok());
  EXPECT_EQ(store_.Add("a", scope_, "text", 1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RendezvousStoreTest, DeletingTheScopeEndsItsWaitersWithNotFound) {
  Outcome waiting;
  store_.Wait(store_.NewWaiterId(), "a", scope_, {"never"}, absl::Seconds(60), waiting.Callback());
  ASSERT_TRUE(store_.Set("a", scope_, "k", "v").ok());
  EXPECT_EQ(store_.DeleteScope(scope_), 1);
  ASSERT_TRUE(waiting.done);
  EXPECT_EQ(waiting.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_.scopes(), 0);
  EXPECT_EQ(store_.Set("a", scope_, "k", "v").code(), absl::StatusCode::kNotFound);
}

TEST_F(RendezvousStoreTest, CancelCompletesOnceAndLateCancelsAreNoOps) {
  Outcome waiting;
  const RendezvousStore::WaiterId id = store_.NewWaiterId();
  store_.Get(id, "a", scope_, "k", absl::Seconds(60), waiting.Callback());
  EXPECT_TRUE(store_.Cancel(id));
  ASSERT_TRUE(waiting.done);
  EXPECT_EQ(waiting.status.code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(store_.Cancel(id));
  ASSERT_TRUE(store_.Set("a", scope_, "k", "v").ok());  // completes nothing twice
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(store_.ExpireWaiters(clock_.Now()), 0);
}

}  // namespace
}  // namespace moecap::coordinator
