// AgentRegistry: registration, leases with a fake clock, loss notification, re-registration.
#include "coordinator/agent_registry.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "tests/fakes/fake_clock.h"
#include "tests/fakes/test_agents.h"

namespace moecap::coordinator {
namespace {

using testing::CpuAgent;

class AgentRegistryTest : public ::testing::Test {
 protected:
  AgentRegistryTest() : registry_(clock_, AgentRegistryOptions{absl::Seconds(10)}) {
    registry_.AddLossListener([this](const AgentLoss& loss) { losses_.push_back(loss); });
  }
  FakeClock clock_;
  AgentRegistry registry_;
  std::vector<AgentLoss> losses_;
};

TEST_F(AgentRegistryTest, RegisterGivesALeaseAndHeartbeatsRenewIt) {
  absl::StatusOr<Registration> reg = registry_.Register(CpuAgent("a"), "", "ipv4:1.2.3.4:5");
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(reg->lease_deadline, clock_.Now() + absl::Seconds(10));
  EXPECT_LT(reg->heartbeat_interval, reg->lease);
  clock_.Advance(absl::Seconds(8));
  absl::StatusOr<absl::Time> deadline =
      registry_.Heartbeat(reg->agent_id, v1::AGENT_STATE_IDLE, {});
  ASSERT_TRUE(deadline.ok());
  EXPECT_EQ(*deadline, clock_.Now() + absl::Seconds(10));
  // 8 s after the heartbeat the lease (18 s from registration) still holds...
  clock_.Advance(absl::Seconds(8));
  EXPECT_EQ(registry_.ExpireLeases(clock_.Now()), 0);
  // ...and 2.001 s later it does not.
  clock_.Advance(absl::Milliseconds(2001));
  EXPECT_EQ(registry_.ExpireLeases(clock_.Now()), 1);
  EXPECT_EQ(registry_.Find(reg->agent_id)->state, v1::AGENT_STATE_LOST);
  EXPECT_EQ(registry_.Heartbeat(reg->agent_id, v1::AGENT_STATE_IDLE, {}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(losses_.empty());  // it held no job
}

TEST_F(AgentRegistryTest, MalformedRegistrationsAreRefused) {
  v1::AgentInfo info = CpuAgent("a");
  info.clear_name();
  EXPECT_EQ(registry_.Register(info, "", "").status().code(), absl::StatusCode::kInvalidArgument);
  info = CpuAgent("a");
  info.set_backend(v1::BACKEND_ANY);
  EXPECT_EQ(registry_.Register(info, "", "").status().code(), absl::StatusCode::kInvalidArgument);
  info = CpuAgent("a");
  info.mutable_inventory()->clear_devices();
  absl::Status s = registry_.Register(info, "", "").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("agent.inventory.devices"), std::string::npos);
}

TEST_F(AgentRegistryTest, SameNameOnAnotherHostIsRefusedWhileLive) {
  ASSERT_TRUE(registry_.Register(CpuAgent("a", 1, "host1"), "", "").ok());
  EXPECT_EQ(registry_.Register(CpuAgent("a", 1, "host2"), "", "").status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST_F(AgentRegistryTest, LossOfAHeldAgentIsReported) {
  Registration reg = *registry_.Register(CpuAgent("a"), "", "");
  ASSERT_TRUE(registry_.Hold(reg.agent_id, "job-1", 0).ok());
  EXPECT_EQ(registry_.Find(reg.agent_id)->state, v1::AGENT_STATE_BUSY);
  EXPECT_FALSE(registry_.Hold(reg.agent_id, "job-2", 0).ok());  // one job at a time
  clock_.Advance(absl::Seconds(11));
  registry_.ExpireLeases(clock_.Now());
  ASSERT_EQ(losses_.size(), 1u);
  EXPECT_EQ(losses_[0].held_job_id, "job-1");
  EXPECT_NE(losses_[0].reason.find("lost"), std::string::npos);
}

TEST_F(AgentRegistryTest, ComingBackAfterLostKeepsTheIdWithANewIncarnation) {
  Registration first = *registry_.Register(CpuAgent("a"), "", "");
  ASSERT_TRUE(registry_.Hold(first.agent_id, "job-1", 0).ok());
  clock_.Advance(absl::Seconds(11));
  registry_.ExpireLeases(clock_.Now());
  absl::StatusOr<Registration> again = registry_.Register(CpuAgent("a"), first.agent_id, "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->agent_id, first.agent_id);
  EXPECT_EQ(again->incarnation, first.incarnation + 1);
  std::optional<AgentView> v = registry_.Find(first.agent_id);
  EXPECT_EQ(v->state, v1::AGENT_STATE_IDLE);
  EXPECT_TRUE(v->held_job_id.empty());           // the old work is not its work any more
  EXPECT_EQ(registry_.LiveAgents().size(), 1u);  // one agent, not two
  EXPECT_EQ(losses_.size(), 1u);                 // reported once, at expiry
}

TEST_F(AgentRegistryTest, RestartWhileHoldingAJobEndsThatWork) {
  Registration first = *registry_.Register(CpuAgent("a"), "", "");
  ASSERT_TRUE(registry_.Hold(first.agent_id, "job-1", 0).ok());
  // The agent process restarted and registers again before its lease ran out, without its id.
  Registration again = *registry_.Register(CpuAgent("a"), "", "");
  EXPECT_EQ(again.agent_id, first.agent_id);
  ASSERT_EQ(losses_.size(), 1u);
  EXPECT_EQ(losses_[0].held_job_id, "job-1");
}

TEST_F(AgentRegistryTest, ReleaseWaitsForTheAgentWhenItWasToldToStop) {
  Registration reg = *registry_.Register(CpuAgent("a"), "", "");
  ASSERT_TRUE(registry_.Hold(reg.agent_id, "job-1", 0).ok());
  registry_.BeginRelease(reg.agent_id, "job-1");
  EXPECT_EQ(registry_.Find(reg.agent_id)->state, v1::AGENT_STATE_BUSY);
  registry_.Release(reg.agent_id, "job-2");  // not its job: no effect
  EXPECT_EQ(registry_.Find(reg.agent_id)->state, v1::AGENT_STATE_BUSY);
  registry_.FinishRelease(reg.agent_id, "job-1");
  EXPECT_EQ(registry_.Find(reg.agent_id)->state, v1::AGENT_STATE_IDLE);
}

TEST_F(AgentRegistryTest, DeregisterEndsTheLeaseAndListsSkipGone) {
  Registration reg = *registry_.Register(CpuAgent("a"), "", "");
  ASSERT_TRUE(registry_.Register(CpuAgent("b"), "", "").ok());
  ASSERT_TRUE(registry_.Deregister(reg.agent_id, "shutting down").ok());
  EXPECT_EQ(registry_.CheckLive(reg.agent_id).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry_.List({}).size(), 1u);
  EXPECT_EQ(registry_.List({v1::AGENT_STATE_GONE}).size(), 1u);
  EXPECT_EQ(registry_.CountByState()[v1::AGENT_STATE_IDLE], 1);
  EXPECT_EQ(registry_.Deregister("nope", "").code(), absl::StatusCode::kNotFound);
}

TEST_F(AgentRegistryTest, DrainingAgentsStayLiveButAreNotIdle) {
  Registration reg = *registry_.Register(CpuAgent("a"), "", "");
  ASSERT_TRUE(registry_.Heartbeat(reg.agent_id, v1::AGENT_STATE_DRAINING, {}).ok());
  EXPECT_EQ(registry_.Find(reg.agent_id)->state, v1::AGENT_STATE_DRAINING);
  EXPECT_FALSE(registry_.Hold(reg.agent_id, "job-1", 0).ok());
}

// The registry finds name clashes through an index by name: an agent that re-registers under a
// new name (same host, its previous id) frees its old name and takes the new one.
TEST_F(AgentRegistryTest, RenamedAgentFreesItsOldNameAndTakesTheNewOne) {
  absl::StatusOr<Registration> a = registry_.Register(CpuAgent("a", 1, "host-1"), "", "");
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<Registration> renamed =
      registry_.Register(CpuAgent("b", 1, "host-1"), a->agent_id, "");
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  EXPECT_EQ(renamed->agent_id, a->agent_id);
  // "a" is free for another host; "b" is taken by host-1's live agent.
  EXPECT_TRUE(registry_.Register(CpuAgent("a", 1, "host-2"), "", "").ok());
  EXPECT_EQ(registry_.Register(CpuAgent("b", 1, "host-3"), "", "").status().code(),
            absl::StatusCode::kAlreadyExists);
}

// HoldOf tells what a heartbeat needs; version() moves on every change that matters to
// placement and stays put for a plain heartbeat.
TEST_F(AgentRegistryTest, HoldOfAndVersionFollowTheAgentsJob) {
  EXPECT_FALSE(registry_.HoldOf("agent-unknown").has_value());
  absl::StatusOr<Registration> reg = registry_.Register(CpuAgent("a"), "", "");
  ASSERT_TRUE(reg.ok()) << reg.status();
  const int64_t registered = registry_.version();
  ASSERT_TRUE(registry_.Heartbeat(reg->agent_id, v1::AGENT_STATE_IDLE, {}).ok());
  EXPECT_EQ(registry_.version(), registered);  // IDLE stays IDLE
  ASSERT_TRUE(registry_.Hold(reg->agent_id, "job-1", 0).ok());
  EXPECT_GT(registry_.version(), registered);
  std::optional<AgentRegistry::HoldState> held = registry_.HoldOf(reg->agent_id);
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->held_job_id, "job-1");
  EXPECT_FALSE(held->releasing);
  registry_.BeginRelease(reg->agent_id, "job-1");
  EXPECT_TRUE(registry_.HoldOf(reg->agent_id)->releasing);
  const int64_t releasing = registry_.version();
  registry_.FinishRelease(reg->agent_id, "job-1");
  EXPECT_GT(registry_.version(), releasing);
  EXPECT_EQ(registry_.HoldOf(reg->agent_id)->held_job_id, "");
}

}  // namespace
}  // namespace moecap::coordinator
