// HeartbeatLoop: state and commands go through; a failure within the lease is retried; NOT_FOUND
// or a whole lease without success gives the registration up (on_lost once).
#include <gtest/gtest.h>

#include "agent/daemon/heartbeat_loop.h"
#include "tests/fakes/fake_coordinator_client.h"

namespace moecap::agentd {
namespace {

struct Seen {
  int lost = 0;
  int failures = 0;
  std::vector<v1::AgentCommand> commands;
};

HeartbeatHooks HooksFor(Seen& seen) {
  HeartbeatHooks hooks;
  hooks.state = [] {
    v1::HeartbeatRequest r;
    r.set_state(v1::AGENT_STATE_BUSY);
    r.set_current_job_id("job-3");
    return r;
  };
  hooks.on_command = [&seen](const v1::AgentCommand& c) { seen.commands.push_back(c); };
  hooks.on_lost = [&seen](const absl::Status&) { ++seen.lost; };
  hooks.on_failure = [&seen] { ++seen.failures; };
  return hooks;
}

TEST(HeartbeatLoopTest, SendsTheStateAndHandsOnCommands) {
  FakeClock clock;
  ScriptedClient client;
  v1::HeartbeatResponse answer;
  answer.add_commands()->mutable_cancel()->set_job_id("job-3");
  answer.add_commands()->mutable_drain();
  client.heartbeat_answers.push_back(answer);
  Seen seen;
  HeartbeatLoop loop(client, clock, "agent-2", absl::Seconds(1), absl::Seconds(3), HooksFor(seen));
  EXPECT_TRUE(loop.BeatOnce());
  ASSERT_EQ(client.heartbeats.size(), 1u);
  EXPECT_EQ(client.heartbeats[0].agent_id(), "agent-2");
  EXPECT_EQ(client.heartbeats[0].state(), v1::AGENT_STATE_BUSY);
  EXPECT_EQ(client.heartbeats[0].current_job_id(), "job-3");
  ASSERT_EQ(seen.commands.size(), 2u);
  EXPECT_TRUE(seen.commands[0].has_cancel());
  EXPECT_TRUE(seen.commands[1].has_drain());
  EXPECT_EQ(seen.lost, 0);
}

TEST(HeartbeatLoopTest, RetriesWithinTheLeaseThenGivesUp) {
  FakeClock clock;
  ScriptedClient client;
  for (int i = 0; i < 4; ++i) {
    client.heartbeat_answers.push_back(absl::UnavailableError("no route"));
  }
  Seen seen;
  HeartbeatLoop loop(client, clock, "agent-2", absl::Seconds(1), absl::Seconds(3), HooksFor(seen));
  // Failures at t = 1 s and 2 s are within the 3 s lease: keep beating.
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(loop.BeatOnce());
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(loop.BeatOnce());
  EXPECT_EQ(seen.lost, 0);
  // At t = 3 s nothing has got through for a whole lease: lost.
  clock.Advance(absl::Seconds(1));
  EXPECT_FALSE(loop.BeatOnce());
  EXPECT_EQ(seen.lost, 1);
  EXPECT_EQ(seen.failures, 3);
  EXPECT_FALSE(loop.BeatOnce());  // stays lost, on_lost is not called again
  EXPECT_EQ(seen.lost, 1);
}

TEST(HeartbeatLoopTest, ASuccessRestartsTheLeaseAndNotFoundIsLostAtOnce) {
  FakeClock clock;
  ScriptedClient client;
  client.heartbeat_answers.push_back(absl::UnavailableError("blip"));
  client.heartbeat_answers.push_back(v1::HeartbeatResponse());
  client.heartbeat_answers.push_back(absl::UnavailableError("blip"));
  client.heartbeat_answers.push_back(absl::NotFoundError("unknown agent"));
  Seen seen;
  HeartbeatLoop loop(client, clock, "agent-2", absl::Seconds(1), absl::Seconds(3), HooksFor(seen));
  clock.Advance(absl::Seconds(2));
  EXPECT_TRUE(loop.BeatOnce());  // t = 2 s, failed, within the lease
  clock.Advance(absl::Seconds(2));
  EXPECT_TRUE(loop.BeatOnce());  // t = 4 s, succeeded: the lease starts again
  clock.Advance(absl::Seconds(2));
  EXPECT_TRUE(loop.BeatOnce());   // t = 6 s, failed, 2 s after the success
  EXPECT_FALSE(loop.BeatOnce());  // the coordinator forgot the agent: register again
  EXPECT_EQ(seen.lost, 1);
}

TEST(HeartbeatLoopTest, StopEndsTheThreadWhileItWaits) {
  RealClock clock;
  ScriptedClient client;
  Seen seen;
  HeartbeatLoop loop(client, clock, "agent-2", absl::Hours(1), absl::Hours(3), HooksFor(seen));
  loop.Start();
  const absl::Time start = absl::Now();
  loop.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_TRUE(client.heartbeats.empty());
}

}  // namespace
}  // namespace moecap::agentd
