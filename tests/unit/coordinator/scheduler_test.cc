// Scheduler: gang placement, priorities, FIFO, backfill with an age limit, wait reasons.
#include "coordinator/scheduler.h"

#include <gtest/gtest.h>

#include "tests/fakes/test_agents.h"

namespace moecap::coordinator {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

SchedulableAgent Agent(const std::string& id, bool free, const v1::AgentInfo& info) {
  SchedulableAgent a;
  a.agent_id = id;
  a.name = info.name();
  a.backend = info.backend();
  a.devices.assign(info.inventory().devices().begin(), info.inventory().devices().end());
  a.free = free;
  return a;
}

SchedulableAgent Cpu(const std::string& id, bool free = true) {
  return Agent(id, free, testing::CpuAgent(id));
}

QueuedJob Job(const std::string& id, int nodes, int64_t seq, int priority = 0,
              absl::Duration waited = absl::ZeroDuration()) {
  QueuedJob j;
  j.job_id = id;
  j.seq = seq;
  j.priority = priority;
  j.queued_since = kNow - waited;
  j.spec.nodes = nodes;
  j.spec.backend = v1::BACKEND_CPU;
  return j;
}

std::vector<std::string> Placed(const ScheduleDecision& d) {
  std::vector<std::string> ids;
  for (const Placement& p : d.placements) ids.push_back(p.job_id);
  return ids;
}

TEST(SchedulerTest, GangStartsOnlyWhenAllItsAgentsAreFree) {
  Scheduler s({});
  // Three agents, one busy: a 3-node job waits, a 2-node job starts on the two free ones.
  const std::vector<SchedulableAgent> agents = {Cpu("a"), Cpu("b", false), Cpu("c")};
  ScheduleDecision d = s.Schedule({Job("big", 3, 1)}, agents, kNow);
  EXPECT_TRUE(d.placements.empty());
  EXPECT_NE(d.waits["big"].reason().find("3 registered agents match, 2 of them free"),
            std::string::npos)
      << d.waits["big"].reason();
  d = s.Schedule({Job("small", 2, 1)}, agents, kNow);
  ASSERT_EQ(d.placements.size(), 1u);
  EXPECT_EQ(d.placements[0].nodes[0].agent_id, "a");
  EXPECT_EQ(d.placements[0].nodes[1].agent_id, "c");
  EXPECT_EQ(d.placements[0].backend, v1::BACKEND_CPU);
}

TEST(SchedulerTest, AThreeAgentJobWaitsWhileATwoAgentJobRuns) {
  Scheduler s({});
  // The 2-agent job holds a and b; the 3-agent job behind it cannot start on c alone.
  const std::vector<SchedulableAgent> agents = {Cpu("a", false), Cpu("b", false), Cpu("c")};
  ScheduleDecision d = s.Schedule({Job("three", 3, 2)}, agents, kNow);
  EXPECT_TRUE(d.placements.empty());
  EXPECT_NE(d.waits["three"].reason().find("waiting for running jobs to finish"),
            std::string::npos);
}

TEST(SchedulerTest, HigherPriorityFirstThenFifo) {
  Scheduler s({});
  const std::vector<SchedulableAgent> agents = {Cpu("a")};
  ScheduleDecision d =
      s.Schedule({Job("old", 1, 1), Job("new-urgent", 1, 3, 5), Job("newer", 1, 2)}, agents, kNow);
  EXPECT_EQ(Placed(d), std::vector<std::string>{"new-urgent"});
  d = s.Schedule({Job("b", 1, 2), Job("a", 1, 1)}, agents, kNow);
  EXPECT_EQ(Placed(d), std::vector<std::string>{"a"});
}

TEST(SchedulerTest, BackfillWithinTheWindowThenReserve) {
  Scheduler s({absl::Minutes(5)});
  const std::vector<SchedulableAgent> agents = {Cpu("a", false), Cpu("b", false), Cpu("c")};
  // "big" (3 agents) queued 1 minute ago: "small" behind it may use the free agent c.
  ScheduleDecision d =
      s.Schedule({Job("big", 3, 1, 0, absl::Minutes(1)), Job("small", 1, 2)}, agents, kNow);
  EXPECT_EQ(Placed(d), std::vector<std::string>{"small"});
  // After 5 minutes "big" reserves: nothing behind it starts, so it cannot starve.
  d = s.Schedule({Job("big", 3, 1, 0, absl::Minutes(5)), Job("small", 1, 2)}, agents, kNow);
  EXPECT_TRUE(d.placements.empty());
  EXPECT_EQ(d.waits["small"].behind_job_id(), "big");
  EXPECT_NE(d.waits["small"].reason().find("waiting behind job big"), std::string::npos)
      << d.waits["small"].reason();
}

TEST(SchedulerTest, AJobTooBigForTheClusterNeverBlocksOthers) {
  Scheduler s({absl::Minutes(5)});
  const std::vector<SchedulableAgent> agents = {Cpu("a"), Cpu("b")};
  // Four agents can never be found among two, however long it waits: it does not reserve.
  ScheduleDecision d =
      s.Schedule({Job("huge", 4, 1, 0, absl::Hours(1)), Job("small", 2, 2)}, agents, kNow);
  EXPECT_EQ(Placed(d), std::vector<std::string>{"small"});
  EXPECT_NE(d.waits["huge"].reason().find("2 registered agents match: waiting for more agents"),
            std::string::npos)
      << d.waits["huge"].reason();
  // The same verdict in fields: only new registrations can place it.
  EXPECT_TRUE(d.waits["huge"].needs_more_agents());
  EXPECT_EQ(d.waits["huge"].agents_needed(), 4);
  EXPECT_EQ(d.waits["huge"].agents_matching(), 2);
  EXPECT_FALSE(d.waits["huge"].needs().empty());
}

TEST(SchedulerTest, AJobWaitingForBusyAgentsDoesNotNeedMoreAgents) {
  Scheduler s({absl::Minutes(5)});
  std::vector<SchedulableAgent> agents = {Cpu("a"), Cpu("b"), Cpu("c")};
  agents[0].free = false;
  ScheduleDecision d = s.Schedule({Job("three", 3, 1)}, agents, kNow);
  ASSERT_TRUE(Placed(d).empty());
  const v1::PlacementVerdict& v = d.waits["three"];
  EXPECT_FALSE(v.needs_more_agents()) << v.reason();
  EXPECT_EQ(v.agents_matching(), 3);
  EXPECT_EQ(v.agents_free(), 2);
}

TEST(SchedulerTest, DevicesBackendAndHardwareMustMatch) {
  Scheduler s({});
  const std::vector<SchedulableAgent> agents = {Agent("gpu4", true, testing::GpuAgent("gpu4", 4)),
                                                Agent("gpu8", true, testing::GpuAgent("gpu8", 8)),
                                                Cpu("cpu")};
  QueuedJob j = Job("eight", 1, 1);
  j.spec.backend = v1::BACKEND_CUDA;
  j.spec.devices_per_node = 8;
  j.spec.hardware = "h100-sxm";
  ScheduleDecision d = s.Schedule({j}, agents, kNow);
  ASSERT_EQ(d.placements.size(), 1u);
  EXPECT_EQ(d.placements[0].nodes[0].agent_id, "gpu8");
  EXPECT_EQ(d.placements[0].nodes[0].device_indices.size(), 8u);
  j.spec.hardware = "a100-sxm-80gb";  // no such devices
  d = s.Schedule({j}, agents, kNow);
  EXPECT_TRUE(d.placements.empty());
  j.spec.hardware = "";
  j.spec.min_device_memory_bytes = 96ull << 30;  // more than an H100 has
  d = s.Schedule({j}, agents, kNow);
  EXPECT_TRUE(d.placements.empty());
  // Backend "any" takes whatever matches: here the CPU agent.
  QueuedJob any = Job("any", 1, 2);
  any.spec.backend = v1::BACKEND_ANY;
  d = s.Schedule({any}, {Cpu("cpu")}, kNow);
  ASSERT_EQ(d.placements.size(), 1u);
  EXPECT_EQ(d.placements[0].backend, v1::BACKEND_CPU);
}

}  // namespace
}  // namespace moecap::coordinator
