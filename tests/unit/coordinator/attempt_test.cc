// The pure parts of a point attempt: assignments built from the job and its gang, node reports
// checked against the ranks an agent holds, and the reports handed to the aggregator.
#include "coordinator/attempt.h"

#include <gtest/gtest.h>

namespace moecap::coordinator {
namespace {

// A job whose point 0 runs `world` expert-parallel ranks.
v1::Job JobWithWorld(int32_t world, v1::Backend backend = v1::BACKEND_ANY) {
  v1::Job job;
  job.set_id("job-000007");
  job.set_name("sweep");
  v1::Point* p = job.add_points();
  p->mutable_workload()->set_expert_parallel(world);
  p->mutable_workload()->set_backend(backend);
  return job;
}

std::vector<NodePlacement> Gang(int agents, int devices) {
  std::vector<NodePlacement> gang;
  for (int a = 0; a < agents; ++a) {
    NodePlacement n;
    n.agent_id = "agent-" + std::to_string(a);
    for (int d = 0; d < devices; ++d) n.device_indices.push_back(10 * a + d);
    gang.push_back(n);
  }
  return gang;
}

TEST(AttemptTest, RanksFillTheNodesInOrderWithTheirDevices) {
  // 5 ranks on nodes of 2 devices: 3 nodes (2 + 2 + 1); the gang's fourth agent is not used.
  const absl::Time due = absl::FromUnixSeconds(1000);
  absl::StatusOr<Attempt> a =
      BuildAttempt(JobWithWorld(5), 0, 3, 2, Gang(4, 2), v1::BACKEND_CUDA, due);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->scope, "job-000007/p0/a3");
  ASSERT_EQ(a->nodes.size(), 3u);
  EXPECT_EQ(a->nodes[0].ranks, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(a->nodes[1].ranks, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(a->nodes[2].ranks, (std::vector<int32_t>{4}));
  const v1::Assignment& last = a->nodes[2].assignment;
  EXPECT_EQ(last.world_size(), 5);
  EXPECT_EQ(last.nodes(), 3);
  EXPECT_EQ(last.node_rank(), 2);
  EXPECT_EQ(last.attempt(), 3);
  EXPECT_EQ(last.rendezvous_prefix(), "job-000007/p0/a3");
  ASSERT_EQ(last.ranks_size(), 1);
  EXPECT_EQ(last.ranks(0).device_index(), 20);  // agent-2's first device
  EXPECT_EQ(last.ranks(0).local_rank(), 0);
  EXPECT_EQ(a->nodes[1].assignment.ranks(1).device_index(), 11);
  // A workload that names no backend runs on the gang's.
  EXPECT_EQ(last.workload().backend(), v1::BACKEND_CUDA);
  EXPECT_EQ(last.deadline().seconds(), 1000);
}

TEST(AttemptTest, AWorkloadsOwnBackendIsKeptAndTooSmallAGangIsRefused) {
  absl::StatusOr<Attempt> a =
      BuildAttempt(JobWithWorld(1, v1::BACKEND_CPU), 0, 1, 1, Gang(1, 1), v1::BACKEND_CUDA, {});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->nodes[0].assignment.workload().backend(), v1::BACKEND_CPU);
  absl::StatusOr<Attempt> big = BuildAttempt(JobWithWorld(4), 0, 1, 1, Gang(3, 1), {}, {});
  EXPECT_EQ(big.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(big.status().message(), "needs 4 agents; the job holds 3");
}

v1::RankReport Rank(int32_t r) {
  v1::RankReport rr;
  rr.set_rank(r);
  return rr;
}

TEST(AttemptTest, ANodeReportMustCoverItsRanksOnceAndNameItsDevices) {
  AttemptNode node;
  node.ranks = {2, 3};
  v1::NodeReport report;
  report.add_devices();
  *report.add_ranks() = Rank(2);
  // Rank 3 neither here nor sent before.
  absl::Status s = CheckNodeReport(node, report, {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("the reports of rank 3 are missing"), std::string::npos) << s;
  // Sent before with ReportRank: complete.
  EXPECT_TRUE(CheckNodeReport(node, report, {{3, Rank(3)}}).ok());
  // A rank twice, or one the agent does not hold.
  v1::NodeReport twice = report;
  *twice.add_ranks() = Rank(2);
  EXPECT_NE(CheckNodeReport(node, twice, {{3, Rank(3)}}).message().find("given twice"),
            std::string::npos);
  v1::NodeReport foreign = report;
  *foreign.add_ranks() = Rank(0);
  EXPECT_NE(CheckNodeReport(node, foreign, {{3, Rank(3)}}).message().find("rank 0"),
            std::string::npos);
  // No devices.
  report.clear_devices();
  EXPECT_NE(CheckNodeReport(node, report, {{3, Rank(3)}}).message().find("report.devices"),
            std::string::npos);
}

TEST(AttemptTest, NodeReportsTakeTheirRanksFromReportRankWhenLeftEmpty) {
  Attempt a;
  a.nodes.resize(2);
  a.nodes[0].agent_id = "x";
  a.nodes[0].ranks = {0, 1};
  a.nodes[1].agent_id = "y";
  a.nodes[1].ranks = {2};
  a.node_reports["x"].set_agent_id("x");  // ranks sent with ReportRank
  a.rank_reports[0] = Rank(0);
  a.rank_reports[1] = Rank(1);
  v1::NodeReport y;
  y.set_agent_id("y");
  *y.add_ranks() = Rank(2);
  a.node_reports["y"] = y;
  const std::vector<v1::NodeReport> out = NodeReportsOf(a);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].agent_id(), "x");
  ASSERT_EQ(out[0].ranks_size(), 2);
  EXPECT_EQ(out[0].ranks(1).rank(), 1);
  ASSERT_EQ(out[1].ranks_size(), 1);
  EXPECT_EQ(out[1].ranks(0).rank(), 2);
}

}  // namespace
}  // namespace moecap::coordinator
